"""Rate limits per key, brute-force throttling per IP, CORS restricted to configured origins."""

from __future__ import annotations

from fastapi.testclient import TestClient

from attrition.api.app import create_app
from attrition.config import AppEnv, Settings
from attrition.db.engine import Database
from attrition.security.keys import generate_key
from tests.helpers import Keys, auth


def _app(settings: Settings, database: Database, **api: object) -> TestClient:
    limited = settings.model_copy(update={"api": settings.api.model_copy(update=api)})
    return TestClient(create_app(limited, database=database), raise_server_exceptions=False)


def test_rate_limit_per_key(
    settings: Settings, database: Database, keys: Keys, model_version: str
) -> None:
    with _app(settings, database, rate_limit_per_minute=3) as client:
        codes = [client.get("/v1/model", headers=auth(keys.auditeur)).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200]
        limited = client.get("/v1/model", headers=auth(keys.auditeur))
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert "Limite de requêtes" in limited.json()["detail"]
        # Another key has its own budget.
        assert client.get("/v1/model", headers=auth(keys.predicteur)).status_code == 200


def test_repeated_failed_authentication_is_throttled(
    settings: Settings, database: Database, keys: Keys
) -> None:
    with _app(settings, database, auth_failures_per_minute=3) as client:
        for _ in range(3):
            assert client.get("/v1/model", headers=auth(generate_key().full)).status_code == 401
        blocked = client.get("/v1/model", headers=auth(generate_key().full))
        assert blocked.status_code == 429
        assert "échecs d'authentification" in blocked.json()["detail"]
        # Only failures are throttled: a valid key from that address still passes (issue 16).
        assert client.get("/v1/model", headers=auth(keys.auditeur)).status_code == 200


def test_cors_only_for_configured_origins(settings: Settings, database: Database) -> None:
    with _app(settings, database, cors_origins=["https://rh.futurisys.example"]) as client:
        ok = client.options(
            "/v1/model",
            headers={
                "Origin": "https://rh.futurisys.example",
                "Access-Control-Request-Method": "GET",
            },
        )
        assert ok.headers.get("access-control-allow-origin") == "https://rh.futurisys.example"
        other = client.options(
            "/v1/model",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in other.headers


def test_hsts_only_in_prod(settings: Settings, database: Database) -> None:
    prod = settings.model_copy(update={"app_env": AppEnv.PROD})
    with TestClient(create_app(prod, database=database)) as client:
        assert client.get("/health").headers["strict-transport-security"].startswith("max-age=")
    with TestClient(create_app(settings, database=database)) as client:
        assert "strict-transport-security" not in client.get("/health").headers
