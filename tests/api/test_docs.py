"""OpenAPI: the committed export matches the app; docs pages are served without a CDN."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from attrition.api.app import create_app
from attrition.config import PROJECT_ROOT


def test_committed_openapi_matches_the_app() -> None:
    committed = json.loads((PROJECT_ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    assert committed == create_app().openapi(), (
        "docs/openapi.json is stale: run `attrition openapi -o docs/openapi.json`"
    )


def test_every_operation_is_documented_in_french(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            assert op.get("summary"), (method, path)
            assert op.get("description"), (method, path)
            if path.startswith("/v1"):
                assert "Rôle" in op["description"], (method, path)
                assert "401" in op["responses"], (method, path)
    schemes = spec["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schemes)
    example = spec["components"]["schemas"]["PredictionRequest"]["examples"][0]
    assert example["age"] == 41 and example["poste"] == "Cadre Commercial"


def test_docs_pages_use_local_assets(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "/static-docs/" in html and "cdn.jsdelivr" not in html
    assert client.get("/static-docs/swagger-ui-bundle.js").status_code == 200


#: The order in which the served description lists its paths (Swagger UI's order): the order
#: in which ``create_app`` includes the routers, whatever order routing tries them in.
DOCUMENTED_PATHS = [
    ("/health", ["get"]),
    ("/ready", ["get"]),
    ("/v1/predictions", ["post", "get"]),
    ("/v1/predictions/batch", ["post"]),
    ("/v1/employees/{id_employee}/predictions", ["post"]),
    ("/v1/predictions/{prediction_id}", ["get"]),
    ("/v1/employees", ["get"]),
    ("/v1/employees/{id_employee}", ["get"]),
    ("/v1/employees/{id_employee}/issue", ["post"]),
    ("/v1/model", ["get"]),
    ("/v1/keys", ["get", "post"]),
    ("/v1/keys/{key_id}", ["delete"]),
    ("/metrics", ["get"]),
    ("/v1/monitoring/drift", ["get"]),
    ("/v1/monitoring/performance", ["get"]),
    ("/v1/audit/checkpoint", ["get"]),
]


def test_served_openapi_keeps_the_documented_order(client: TestClient) -> None:
    served = client.get("/openapi.json").json()
    assert [(path, list(item)) for path, item in served["paths"].items()] == DOCUMENTED_PATHS
