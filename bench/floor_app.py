"""The floor of the benchmark: what FastAPI alone costs for ``POST /v1/predictions``.

The same route path and the project's own request schema (:class:`PredictionRequest`, with its
strict types and range checks), validated by FastAPI as any route would, and then a constant
reply: no API key, no model, no database, no middleware. Nothing the service does can cost
less than this on the same machine, served the same way (one SO_REUSEPORT socket per worker,
``attrition.api.server.serve``), under the same load generator and the same bodies, so the
service's throughput is reported as a fraction of this one in the same run (bench/run.py).

The reply is pre-encoded once: the floor measures the framework and the validation, not the
serialisation of a constant.

Run: ``uvicorn --app-dir bench floor_app:create_app --factory`` (no setting needed).
"""

from __future__ import annotations

from fastapi import FastAPI, Response

from attrition.api.schemas import PredictionRequest

#: The shape of the service's reply, with fixed values (never read by the bench).
REPLY = (
    b'{"prediction_id":1,"probabilite_depart":0.25,"prediction":"reste","seuil":0.4,'
    b'"niveau_risque":"moyen","explication":{},"model_version":"plancher",'
    b'"id_employee":null,"horodatage":"2026-01-01T00:00:00Z"}'
)


def create_app() -> FastAPI:
    """A FastAPI app with ``/ready`` and a constant ``POST /v1/predictions``."""
    app = FastAPI(title="plancher", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/ready")
    async def ready() -> dict[str, str]:
        """Always ready: there is nothing to load."""
        return {"statut": "pret"}

    @app.post("/v1/predictions", status_code=201)
    async def create_prediction(body: PredictionRequest) -> Response:
        """Validate the body with the project's schema, reply a constant."""
        return Response(REPLY, status_code=201, media_type="application/json")

    return app
