"""Idempotency-Key beyond the happy path: expiry, refused and failed attempts, stored employees.

A key is only spent by a request that was recorded: a refused (422) or failed (503) attempt
leaves it free for the retry, and an expired key can be used again.
"""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.db.engine import Database
from tests.helpers import Keys, auth


def _inputs(database: Database, key: str) -> int:
    with database.owner_engine().connect() as c:
        return int(
            c.scalar(
                text("SELECT count(*) FROM prediction_inputs WHERE idempotency_key = :k"),
                {"k": key},
            )
            or 0
        )


def test_an_expired_key_can_be_used_again(
    client: TestClient, keys: Keys, database: Database
) -> None:
    key = f"expire-{uuid.uuid4()}"
    headers = {**auth(keys.predicteur), "Idempotency-Key": key}
    first = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
    assert first.status_code == 201
    replay = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
    assert replay.headers.get("idempotent-replayed") == "true"
    with database.owner_engine().begin() as c:
        expired = c.execute(
            text(
                "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
                "WHERE key = :k"
            ),
            {"k": key},
        ).rowcount
    assert expired == 1
    again = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["prediction_id"] != first.json()["prediction_id"]
    assert _inputs(database, key) == 2
    # The key is remembered anew (24 h) with the new response; another body is now refused.
    with database.owner_engine().connect() as c:
        stored_id, ttl_hours = c.execute(
            text(
                "SELECT (response->>'prediction_id')::bigint, "
                "extract(epoch FROM expires_at - now()) / 3600 FROM idempotency_keys "
                "WHERE key = :k"
            ),
            {"k": key},
        ).one()
    assert stored_id == again.json()["prediction_id"]
    assert 23.9 < ttl_hours <= 24
    other = client.post("/v1/predictions", json={**EXAMPLE_EMPLOYEE, "age": 42}, headers=headers)
    assert other.status_code == 422


def test_an_expired_key_accepts_another_body(
    client: TestClient, keys: Keys, database: Database
) -> None:
    key = f"expire-autre-{uuid.uuid4()}"
    headers = {**auth(keys.predicteur), "Idempotency-Key": key}
    assert client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers).status_code == 201
    with database.owner_engine().begin() as c:
        c.execute(text("UPDATE idempotency_keys SET expires_at = now() WHERE key = :k"), {"k": key})
    other = client.post("/v1/predictions", json={**EXAMPLE_EMPLOYEE, "age": 42}, headers=headers)
    assert other.status_code == 201, other.text
    assert _inputs(database, key) == 2


def test_a_refused_request_does_not_spend_the_key(
    client: TestClient, keys: Keys, database: Database
) -> None:
    key = f"refus-{uuid.uuid4()}"
    headers = {**auth(keys.predicteur), "Idempotency-Key": key}
    bad = client.post("/v1/predictions", json={**EXAMPLE_EMPLOYEE, "age": 12}, headers=headers)
    assert bad.status_code == 422
    good = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
    assert good.status_code == 201 and "idempotent-replayed" not in good.headers
    assert _inputs(database, key) == 1


def test_a_failed_request_does_not_spend_the_key(
    client: TestClient, keys: Keys, database: Database
) -> None:
    """A 503 (here: the table locked) is safe to retry with the same key: one prediction."""
    key = f"panne-{uuid.uuid4()}"
    headers = {**auth(keys.predicteur), "Idempotency-Key": key}
    with database.owner_engine().connect() as owner:
        lock = owner.begin()
        owner.execute(text("LOCK TABLE prediction_inputs IN ACCESS EXCLUSIVE MODE"))
        try:
            failed = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
        finally:
            lock.rollback()
    assert failed.status_code == 503
    retried = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    replayed = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.json() == retried.json()
    assert _inputs(database, key) == 1


def test_the_stored_employee_endpoint_is_idempotent_too(
    client: TestClient, keys: Keys, database: Database
) -> None:
    key = f"employe-{uuid.uuid4()}"
    headers = {**auth(keys.predicteur), "Idempotency-Key": key}
    first = client.post("/v1/employees/1/predictions", headers=headers)
    second = client.post("/v1/employees/1/predictions", headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.json() == first.json()
    other = client.post("/v1/employees/2/predictions", headers=headers)
    assert other.status_code == 422  # same key, another resource: refused, not replayed
    assert _inputs(database, key) == 1
