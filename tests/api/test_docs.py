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
