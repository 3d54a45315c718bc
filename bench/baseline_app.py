"""A deliberately plain variant of the prediction endpoint: the reference of the benchmark.

What a first, straightforward implementation would look like: a sync ``def`` endpoint (run in
FastAPI's thread pool), the scikit-learn pipeline fed a one-row pandas DataFrame, one
SQLAlchemy ORM ``Session`` and one commit per request inserting a ``PredictionInput`` and its
``Prediction``. Same request schema, same tables, same database as the service.

It does LESS than the service: no API key check, no rate limit, no explanation (an empty
one is stored), no security headers. The ratios computed against it are therefore on the
conservative side. Like the service, it stores a server-generated request id (the client's
``X-Request-ID`` apart) and the record's MAC, which the trail requires.

Run: ``uvicorn --app-dir bench baseline_app:create_app --factory`` with
``BASELINE_DATABASE_URL`` set to the owner URL (the bench serves it like the service, one
listening socket per worker, so that the comparison is of the request path alone).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Annotated, Any

import pandas as pd
from fastapi import FastAPI, Header
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from attrition.api.schemas import PredictionRequest
from attrition.config import get_settings
from attrition.db import chain
from attrition.db.audit import PredictionRecord
from attrition.db.models import ModelVersion, Prediction, PredictionInput
from attrition.model.artifact import load_pipeline
from attrition.model.features import to_model_frame
from attrition.security.secrets import audit_key


def create_app() -> FastAPI:
    """Load the active model once, then serve ``POST /v1/predictions`` the plain way."""
    engine = create_engine(os.environ["BASELINE_DATABASE_URL"])
    key = audit_key(get_settings())
    with Session(engine) as session:
        active = session.scalars(select(ModelVersion).where(ModelVersion.is_active)).one()
        pipeline = load_pipeline(active.artifact, active.artifact_sha256)
        model_id, version, threshold = active.id, active.version, active.threshold

    app = FastAPI(title="baseline")

    @app.get("/ready")
    def ready() -> dict[str, str]:
        """Ready once the model is loaded (it is, by construction)."""
        return {"statut": "pret"}

    @app.post("/v1/predictions", status_code=201)
    def create_prediction(
        body: PredictionRequest,
        x_request_id: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Score one employee and record input and output."""
        started = time.perf_counter()
        features = body.features()
        frame = to_model_frame(pd.DataFrame([features]))
        probability = float(pipeline.predict_proba(frame)[0, 1])
        label = "depart" if probability >= threshold else "reste"
        if probability >= threshold:
            risk = "eleve"
        elif probability >= threshold / 2:
            risk = "moyen"
        else:
            risk = "faible"
        latency_ms = (time.perf_counter() - started) * 1000
        payload = body.model_dump(mode="json", exclude_none=True)
        request_id = uuid.uuid4().hex
        mac = chain.record_mac(
            key,
            PredictionRecord(
                request_id=request_id,
                client_request_id=x_request_id,
                api_key_id=None,
                source="api",
                id_employee=body.id_employee,
                features=features,
                payload=payload,
                model_version_id=model_id,
                probability=probability,
                label=label,
                threshold=threshold,
                risk_level=risk,
                explanation={},
                latency_ms=latency_ms,
            ).mac_values(),
        )
        with Session(engine) as session:
            record = PredictionInput(
                request_id=request_id,
                client_request_id=x_request_id,
                source="api",
                id_employee=body.id_employee,
                payload=payload,
                **features,
            )
            prediction = Prediction(
                input=record,
                model_version_id=model_id,
                probability=probability,
                label=label,
                threshold=threshold,
                risk_level=risk,
                explanation={},
                latency_ms=latency_ms,
                record_mac=mac,
            )
            session.add_all([record, prediction])
            session.commit()
            return {
                "prediction_id": prediction.id,
                "probabilite_depart": probability,
                "prediction": label,
                "seuil": threshold,
                "niveau_risque": risk,
                "model_version": version,
                "horodatage": prediction.created_at.isoformat(),
            }

    return app
