"""Authentication, roles, object-level access, key management, least-privilege database."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import Settings
from attrition.db.engine import Database, libpq_conninfo
from attrition.security.keys import generate_key, parse_key
from tests.helpers import Keys, auth

V1_GETS = [
    "/v1/predictions",
    "/v1/predictions/1",
    "/v1/employees",
    "/v1/employees/1",
    "/v1/model",
    "/v1/keys",
]


@pytest.mark.parametrize("path", V1_GETS)
def test_every_v1_endpoint_needs_a_key(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 401
    assert r.json()["detail"].startswith("Clé API manquante")
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_malformed_and_unknown_keys(client: TestClient) -> None:
    assert (
        client.get("/v1/model", headers=auth("nope"))
        .json()["detail"]
        .startswith("Clé API mal formée")
    )
    typo = generate_key().full
    typo = typo[:-1] + ("A" if typo[-1] != "A" else "B")
    assert client.get("/v1/model", headers=auth(typo)).json()["detail"] == (
        "Clé API invalide (somme de contrôle incorrecte)."
    )
    unknown = generate_key().full
    r = client.get("/v1/model", headers={"X-API-Key": unknown})
    assert r.status_code == 401 and r.json()["detail"] == "Clé API invalide."


def test_roles(client: TestClient, keys: Keys) -> None:
    assert (
        client.post(
            "/v1/keys", json={"name": "x", "role": "auditeur"}, headers=auth(keys.predicteur)
        ).status_code
        == 403
    )
    r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.auditeur))
    assert r.status_code == 403
    assert "auditeur" in r.json()["detail"]


def test_object_level_access(client: TestClient, keys: Keys) -> None:
    mine = client.post(
        "/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur)
    ).json()
    pid = mine["prediction_id"]
    assert (
        client.get(f"/v1/predictions/{pid}", headers=auth(keys.autre_predicteur)).status_code == 404
    )
    assert client.get(f"/v1/predictions/{pid}", headers=auth(keys.auditeur)).status_code == 200
    others = client.get("/v1/predictions?limite=200", headers=auth(keys.autre_predicteur)).json()
    assert pid not in [p["prediction_id"] for p in others["predictions"]]
    everyone = client.get("/v1/predictions?limite=200", headers=auth(keys.auditeur)).json()
    assert pid in [p["prediction_id"] for p in everyone["predictions"]]


def test_key_lifecycle_through_the_api(client: TestClient, keys: Keys, database: Database) -> None:
    created = client.post(
        "/v1/keys",
        json={"name": "equipe-rh", "role": "predicteur", "expires_in_days": 30},
        headers=auth(keys.admin),
    )
    assert created.status_code == 201
    body = created.json()
    key = body["key"]
    assert parse_key(key).key_id == body["key_id"]
    listed = client.get("/v1/keys", headers=auth(keys.admin)).json()
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert body["key_id"] in [k["key_id"] for k in listed]
    assert (
        client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(key)).status_code == 201
    )
    with database.owner_engine().connect() as c:
        stored = c.scalar(
            text("SELECT key_hash FROM api_keys WHERE key_id = :k"), {"k": body["key_id"]}
        )
    assert key.encode() not in bytes(stored) and len(bytes(stored)) == 32
    revoked = client.delete(f"/v1/keys/{body['key_id']}", headers=auth(keys.admin))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(key))
    assert r.status_code == 401 and r.json()["detail"] == "Clé API révoquée."
    assert client.delete("/v1/keys/zzzzzzzz", headers=auth(keys.admin)).status_code == 404


def test_mass_assignment_is_refused(client: TestClient, keys: Keys) -> None:
    r = client.post(
        "/v1/keys", json={"name": "x", "role": "admin", "key_hash": "00"}, headers=auth(keys.admin)
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["champ"] == "key_hash"


def test_sql_injection_strings_are_data(client: TestClient, keys: Keys, database: Database) -> None:
    r = client.post(
        "/v1/predictions",
        json={**EXAMPLE_EMPLOYEE, "poste": "x'; DROP TABLE predictions; --"},
        headers=auth(keys.predicteur),
    )
    assert r.status_code == 422
    r = client.get("/v1/predictions?model_version=v1' OR '1'='1", headers=auth(keys.auditeur))
    assert r.status_code == 200 and r.json()["predictions"] == []
    with database.owner_engine().connect() as c:
        assert c.scalar(text("SELECT to_regclass('predictions') IS NOT NULL"))


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE predictions SET probability = 0",
        "DELETE FROM prediction_inputs",
        "TRUNCATE predictions",
        "ALTER TABLE predictions ADD COLUMN x int",
        "DELETE FROM api_keys",
        "UPDATE employees SET age = 30",
    ],
)
def test_application_role_cannot(database: Database, statement: str) -> None:
    with psycopg.connect(libpq_conninfo(database.app_url)) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_append_only_trigger_stops_even_the_owner(
    database: Database, client: TestClient, keys: Keys
) -> None:
    client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
    with database.owner_engine().connect() as c, pytest.raises(Exception, match="ajout seul"):
        c.execute(text("UPDATE predictions SET probability = 0"))


def test_owner_role_is_not_a_superuser(database: Database, settings: Settings) -> None:
    if settings.database_url:
        pytest.skip("external server: the owner is whoever DATABASE_URL names")
    with database.owner_engine().connect() as c:
        user, superuser = c.execute(
            text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        ).one()
    assert user == settings.db.owner_role and superuser is False
    with psycopg.connect(libpq_conninfo(database.app_url)) as conn:
        settings_row = conn.execute("SHOW statement_timeout").fetchone()
    assert settings_row is not None and settings_row[0] == "2s"  # 2,000 ms by default
