"""Ask only what the model needs: fields the model does not use are optional and not stored."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.data import vocabulary as voc
from attrition.db.engine import Database
from attrition.model.features import EXCLUDED_FROM_MODEL
from tests.helpers import Keys, auth

UNUSED = ("genre", "statut_marital")


def without_unused(record: dict[str, Any]) -> dict[str, Any]:
    return {k: val for k, val in record.items() if k not in UNUSED}


def stored(database: Database, request_id: str) -> list[tuple[Any, ...]]:
    with database.owner_engine().connect() as c:
        return list(
            c.execute(
                text(
                    "SELECT i.genre, i.statut_marital, i.payload ? 'genre', "
                    "i.payload ? 'statut_marital', i.age FROM prediction_inputs i "
                    "WHERE i.client_request_id = :r ORDER BY i.batch_row"
                ),
                {"r": request_id},
            ).all()
        )


def test_unused_fields_are_the_ones_the_model_leaves_out() -> None:
    assert set(UNUSED) == set(EXCLUDED_FROM_MODEL) == set(voc.NOT_MODEL_INPUTS)
    assert all(not voc.FEATURES_BY_NAME[name].required for name in UNUSED)
    assert all(f.required for f in voc.FEATURES if f.name not in UNUSED)


def test_prediction_without_genre_and_marital_status_is_accepted_and_not_stored(
    client: TestClient, keys: Keys, database: Database
) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    r = client.post(
        "/v1/predictions",
        json=without_unused(EXAMPLE_EMPLOYEE),
        headers={**auth(keys.predicteur), "X-Request-ID": request_id},
    )
    assert r.status_code == 201, r.text
    assert stored(database, request_id) == [(None, None, False, False, 41)]
    recorded = client.get(
        f"/v1/predictions/{r.json()['prediction_id']}", headers=auth(keys.predicteur)
    ).json()
    assert "genre" not in recorded["entree"] and "statut_marital" not in recorded["entree"]
    assert recorded["entree"]["age"] == 41


def test_same_score_with_or_without_the_unused_fields(client: TestClient, keys: Keys) -> None:
    full = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
    short = client.post(
        "/v1/predictions", json=without_unused(EXAMPLE_EMPLOYEE), headers=auth(keys.predicteur)
    )
    assert full.status_code == short.status_code == 201
    assert full.json()["probabilite_depart"] == short.json()["probabilite_depart"]


def test_batch_without_unused_fields(client: TestClient, keys: Keys, database: Database) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    r = client.post(
        "/v1/predictions/batch",
        json={"employes": [without_unused(EXAMPLE_EMPLOYEE), EXAMPLE_EMPLOYEE]},
        headers={**auth(keys.predicteur), "X-Request-ID": request_id},
    )
    assert r.status_code == 201, r.text
    rows = stored(database, request_id)
    assert rows == [(None, None, False, False, 41), ("F", "Célibataire", True, True, 41)]


def test_a_given_unused_field_is_still_checked(client: TestClient, keys: Keys) -> None:
    r = client.post(
        "/v1/predictions",
        json={**EXAMPLE_EMPLOYEE, "genre": "X"},
        headers=auth(keys.predicteur),
    )
    assert r.status_code == 422
    assert [e["champ"] for e in r.json()["errors"]] == ["genre"]


def test_openapi_marks_only_the_unused_fields_optional(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictionRequest"]
    required = set(schema["required"])
    assert not required & set(UNUSED)
    assert required == {f.name for f in voc.FEATURES if f.name not in UNUSED}


def stored_for_prediction(database: Database, prediction_id: int) -> tuple[Any, ...]:
    """What the database holds of one prediction's input: the unused fields and the age."""
    with database.owner_engine().connect() as c:
        return tuple(
            c.execute(
                text(
                    "SELECT i.genre, i.statut_marital, i.payload ? 'genre', "
                    "i.payload ? 'statut_marital', i.age, i.id_employee FROM predictions p "
                    "JOIN prediction_inputs i ON i.id = p.input_id WHERE p.id = :p"
                ),
                {"p": prediction_id},
            ).one()
        )


def test_stored_employee_prediction_copies_only_what_the_model_needs(
    client: TestClient, keys: Keys, database: Database
) -> None:
    with database.owner_engine().connect() as c:
        genre, marital, age = c.execute(
            text("SELECT genre, statut_marital, age FROM employees WHERE id_employee = 1")
        ).one()
    assert genre and marital  # the record has them: the prediction must not copy them
    r = client.post("/v1/employees/1/predictions", headers=auth(keys.predicteur))
    assert r.status_code == 201, r.text
    assert stored_for_prediction(database, r.json()["prediction_id"]) == (
        None,
        None,
        False,
        False,
        age,
        1,
    )
    recorded = client.get(
        f"/v1/predictions/{r.json()['prediction_id']}", headers=auth(keys.predicteur)
    ).json()
    assert "genre" not in recorded["entree"] and "statut_marital" not in recorded["entree"]
