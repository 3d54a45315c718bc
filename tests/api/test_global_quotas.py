"""Daily quotas are counted in PostgreSQL: global to every replica, kept across restarts.

Two applications built on one database stand for two replicas (each with its own
authenticator, as two `attrition serve` on two hosts); a third one built after both are
closed stands for a restart.
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.app import create_app
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import Settings
from attrition.db.engine import Database
from attrition.security.store import create_key, set_daily_quota
from tests.helpers import auth, used_today


def _replica(settings: Settings, database: Database) -> TestClient:
    return TestClient(create_app(settings, database=database), raise_server_exceptions=False)


def test_a_daily_quota_is_shared_by_replicas_and_survives_a_restart(
    settings: Settings, database: Database, model_version: str
) -> None:
    created = create_key(database, settings, name="quota-repliques", role="predicteur")
    set_daily_quota(database, created.key_id, 3)
    headers = auth(created.key)
    batch = {"employes": [EXAMPLE_EMPLOYEE] * 2}
    with _replica(settings, database) as a, _replica(settings, database) as b:
        first = a.post("/v1/predictions/batch", json=batch, headers=headers)
        assert first.status_code == 201, first.text
        assert first.headers["ratelimit-remaining"] == "1"
        # The other replica sees the two predictions already made.
        refused = b.post("/v1/predictions/batch", json=batch, headers=headers)
        assert refused.status_code == 429, refused.text
        assert "Quota journalier" in refused.json()["detail"]
        assert "2 déjà faites" in refused.json()["detail"]
        assert refused.headers["ratelimit-remaining"] == "1"
        last = b.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
        assert last.status_code == 201 and last.headers["ratelimit-remaining"] == "0"
        assert a.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers).status_code == 429
    with _replica(settings, database) as restarted:
        again = restarted.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
        assert again.status_code == 429, again.text
    assert used_today(database, key_id=created.key_id) == 3


def _usage_and_prediction_xmin(database: Database, key_id: str) -> tuple[list[str], list[str]]:
    """Transaction ids that wrote the key's usage row and its predictions."""
    with database.owner_engine().connect() as conn:
        usage = conn.scalars(
            text(
                "SELECT u.xmin::text FROM usage_counters u JOIN api_keys k ON u.key = 'key:' || k.id "
                "WHERE k.key_id = :key_id"
            ),
            {"key_id": key_id},
        ).all()
        predictions = conn.scalars(
            text(
                "SELECT p.xmin::text FROM predictions p "
                "JOIN prediction_inputs i ON i.id = p.input_id "
                "JOIN api_keys k ON k.id = i.api_key_id WHERE k.key_id = :key_id"
            ),
            {"key_id": key_id},
        ).all()
    return list(usage), list(predictions)


@pytest.mark.parametrize("idempotent", [False, True], ids=["grouped", "idempotency-key"])
def test_a_prediction_and_its_daily_count_are_one_transaction(
    settings: Settings, database: Database, model_version: str, idempotent: bool
) -> None:
    """One commit holds the prediction and its count: never one without the other."""
    created = create_key(database, settings, name=f"quota-tx-{idempotent}", role="predicteur")
    headers = auth(created.key)
    if idempotent:
        headers["Idempotency-Key"] = f"tx-{uuid.uuid4().hex}"
    with _replica(settings, database) as app:
        answer = app.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
        assert answer.status_code == 201, answer.text
    usage, predictions = _usage_and_prediction_xmin(database, created.key_id)
    assert len(usage) == 1 and len(predictions) == 1
    assert usage == predictions


def test_a_prediction_refused_by_the_database_spends_no_quota(
    settings: Settings, database: Database, model_version: str
) -> None:
    """A batch naming an unknown employee is a 404 and takes nothing from the day's quota."""
    created = create_key(database, settings, name="quota-refus", role="predicteur")
    set_daily_quota(database, created.key_id, 2)
    headers = auth(created.key)
    unknown = {**EXAMPLE_EMPLOYEE, "id_employee": 2_000_000_000}
    with _replica(settings, database) as app:
        refused = app.post(
            "/v1/predictions/batch", json={"employes": [unknown, EXAMPLE_EMPLOYEE]}, headers=headers
        )
        assert refused.status_code == 404, refused.text
        batch = {"employes": [EXAMPLE_EMPLOYEE] * 2}
        ok = app.post("/v1/predictions/batch", json=batch, headers=headers)
        assert ok.status_code == 201, ok.text
        assert ok.headers["ratelimit-remaining"] == "0"
