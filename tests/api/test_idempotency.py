"""Idempotency-Key: a retry replays, a different body is refused, concurrency gives one."""

from __future__ import annotations

import asyncio
import uuid

import httpx
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


def test_retry_returns_the_same_prediction_and_writes_nothing(
    client: TestClient, keys: Keys, database: Database
) -> None:
    key = f"essai-{uuid.uuid4()}"
    headers = {**auth(keys.predicteur), "Idempotency-Key": key}
    first = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # Same JSON, other key order and spacing: still the same request.
    reordered = dict(reversed(list(EXAMPLE_EMPLOYEE.items())))
    second = client.post("/v1/predictions", json=reordered, headers=headers)
    assert second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert _inputs(database, key) == 1


def test_same_key_with_another_body_is_refused(client: TestClient, keys: Keys) -> None:
    headers = {**auth(keys.predicteur), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    assert client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers).status_code == 201
    other = client.post("/v1/predictions", json={**EXAMPLE_EMPLOYEE, "age": 42}, headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"][0]["champ"] == "Idempotency-Key"


def test_keys_are_scoped_per_client(client: TestClient, keys: Keys, database: Database) -> None:
    key = f"partagee-{uuid.uuid4()}"
    a = client.post(
        "/v1/predictions",
        json=EXAMPLE_EMPLOYEE,
        headers={**auth(keys.predicteur), "Idempotency-Key": key},
    )
    b = client.post(
        "/v1/predictions",
        json=EXAMPLE_EMPLOYEE,
        headers={**auth(keys.autre_predicteur), "Idempotency-Key": key},
    )
    assert a.json()["prediction_id"] != b.json()["prediction_id"]
    assert _inputs(database, key) == 2


def test_batch_retry(client: TestClient, keys: Keys, database: Database) -> None:
    key = f"lot-{uuid.uuid4()}"
    headers = {**auth(keys.predicteur), "Idempotency-Key": key}
    body = {"employes": [EXAMPLE_EMPLOYEE, EXAMPLE_EMPLOYEE]}
    first = client.post("/v1/predictions/batch", json=body, headers=headers)
    second = client.post("/v1/predictions/batch", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert _inputs(database, key) == 2  # the two rows of the first batch, nothing more


def test_concurrent_requests_with_one_key_give_one_prediction(
    client: TestClient, keys: Keys, database: Database
) -> None:
    key = f"concurrent-{uuid.uuid4()}"
    headers = {**auth(keys.predicteur), "Idempotency-Key": key}
    app = client.app

    async def fire() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await asyncio.gather(
                *[
                    http.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
                    for _ in range(6)
                ]
            )

    responses = client.portal.call(fire)  # type: ignore[union-attr]
    assert {r.status_code for r in responses} <= {201, 409}
    ids = {r.json()["prediction_id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    assert _inputs(database, key) == 1


def test_a_large_batch_with_a_key_is_copied_once(
    client: TestClient, keys: Keys, database: Database
) -> None:
    """From LARGE_GROUP rows the one-transaction path writes by COPY: same answer, once."""
    from attrition.db.writer import LARGE_GROUP

    key = f"gros-lot-{uuid.uuid4()}"
    headers = {**auth(keys.predicteur), "Idempotency-Key": key}
    body = {"employes": [{**EXAMPLE_EMPLOYEE, "age": 30 + n % 30} for n in range(LARGE_GROUP)]}
    first = client.post("/v1/predictions/batch", json=body, headers=headers)
    second = client.post("/v1/predictions/batch", json=body, headers=headers)
    assert first.status_code == second.status_code == 201, first.text
    assert first.json() == second.json()
    assert _inputs(database, key) == LARGE_GROUP
    ids = [p["prediction_id"] for p in first.json()["predictions"]]
    with database.owner_engine().connect() as c:
        ages = c.execute(
            text(
                "SELECT p.id, i.age, i.batch_row FROM predictions p "
                "JOIN prediction_inputs i ON i.id = p.input_id WHERE p.id = ANY(:ids)"
            ),
            {"ids": ids},
        ).all()
    by_id = {r[0]: (r[1], r[2]) for r in ages}
    assert [by_id[i] for i in ids] == [(30 + n % 30, n) for n in range(LARGE_GROUP)]
