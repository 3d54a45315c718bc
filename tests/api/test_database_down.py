"""With the database unreachable: 503 with Retry-After, liveness stays up, nothing written."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import make_url, text

from attrition.api.app import create_app
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import Settings
from attrition.db.engine import Database
from tests.helpers import Keys, auth, orphan_inputs


def test_unreachable_database(settings: Settings, database: Database, keys: Keys) -> None:
    closed = make_url("postgresql+psycopg://attrition_app:x@127.0.0.1:9/attrition")
    down = Database(owner_url=database.owner_url, app_url=closed)
    fast = settings.model_copy(
        update={
            "db": settings.db.model_copy(update={"pool_timeout_s": 0.5, "connect_timeout_s": 1})
        }
    )
    with database.owner_engine().connect() as c:
        before = c.scalar(text("SELECT count(*) FROM prediction_inputs"))
    with TestClient(create_app(fast, database=down), raise_server_exceptions=False) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["statut"] == "indisponible"
        r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
        assert r.status_code == 503
        assert r.headers["retry-after"] == "2"
        assert r.headers["content-type"] == "application/problem+json"
        assert "indisponible" in r.json()["detail"]
    with database.owner_engine().connect() as c:
        assert c.scalar(text("SELECT count(*) FROM prediction_inputs")) == before
    assert orphan_inputs(database) == 0
