"""An empty request body is named as such, in French, and nothing is recorded (issue #18)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.db.engine import Database
from tests.helpers import Keys, auth

#: Every JSON endpoint of the API that takes a body: path and the key role that may call it.
ENDPOINTS = (
    ("/v1/predictions", "predicteur"),
    ("/v1/predictions/batch", "predicteur"),
    ("/v1/employees/1/issue", "admin"),
    ("/v1/keys", "admin"),
)
EMPTY = "corps de la requête vide : un objet JSON est attendu"


def counts(database: Database) -> tuple[int, ...]:
    with database.owner_engine().connect() as c:
        row = c.execute(
            text(
                "SELECT (SELECT count(*) FROM prediction_inputs), (SELECT count(*) FROM "
                "predictions), (SELECT count(*) FROM employee_outcomes), (SELECT count(*) FROM api_keys)"
            )
        ).one()
    return tuple(int(v) for v in row)


def rejection(database: Database, request_id: str) -> tuple[int, str] | None:
    with database.owner_engine().connect() as c:
        row = c.execute(
            text("SELECT status, errors::text FROM rejected_requests WHERE client_request_id = :r"),
            {"r": request_id},
        ).one_or_none()
    return None if row is None else (int(row[0]), str(row[1]))


@pytest.mark.parametrize(("path", "role"), ENDPOINTS)
@pytest.mark.parametrize(
    "headers",
    [{}, {"Content-Type": "application/json"}, {"Content-Type": "application/json; charset=utf-8"}],
    ids=["sans-type", "json", "json-utf8"],
)
@pytest.mark.parametrize("body", [b"", b"   \n"], ids=["vide", "blancs"])
def test_empty_body_is_named_and_records_nothing(
    client: TestClient,
    keys: Keys,
    database: Database,
    path: str,
    role: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    before = counts(database)
    r = client.post(
        path,
        content=body,
        headers={**auth(getattr(keys, role)), **headers, "X-Request-ID": request_id},
    )
    if body and not headers:
        # Bytes without a type are refused at the edge before they are read (415).
        assert r.status_code == 415, r.text
        assert counts(database) == before
        return
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["errors"] == [{"champ": "corps", "message": EMPTY}]
    assert problem["detail"] == f"Entrée invalide : corps : {EMPTY}"
    assert "manquant" not in r.text and "JSON invalide" not in r.text
    assert counts(database) == before
    recorded = rejection(database, request_id)
    assert recorded is not None and recorded[0] == 422 and EMPTY in recorded[1]


def test_empty_object_still_names_the_missing_fields(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/predictions", json={}, headers=auth(keys.predicteur))
    assert r.status_code == 422
    fields = {item["champ"] for item in r.json()["errors"]}
    assert "age" in fields and "corps" not in fields
