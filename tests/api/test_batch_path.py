"""The batch path answers and records what the single-prediction path does, row for row.

Pins the behaviour of ``POST /v1/predictions/batch`` that its speed work must keep: the same
response fields in the same order as one prediction per employee, the same recorded inputs and
outputs, a record MAC that verifies on every row, and errors named by field and row.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.db import chain
from attrition.db.engine import Database
from tests.helpers import TEST_AUDIT_KEY, Keys, auth

TOLERANCE = 1e-12  # the one-row path scores in plain Python (tests/model/test_scalar_scoring.py)

EMPLOYEES: list[dict[str, Any]] = [
    {**EXAMPLE_EMPLOYEE, "id_employee": 1},
    {k: v for k, v in EXAMPLE_EMPLOYEE.items() if k not in ("genre", "statut_marital")},
    {**EXAMPLE_EMPLOYEE, "revenu_mensuel": 5993.0, "augmentation_salaire_precedente": 11},
    {**EXAMPLE_EMPLOYEE, "heures_supplementaires": False, "age": 29, "poste": "Consultant"},
    {
        **EXAMPLE_EMPLOYEE,
        "departement": "Consulting",
        "poste": "Manager",
        "frequence_deplacement": "Frequent",
        "satisfaction_employee_environnement": 4,
        "nombre_participation_pee": 2,
    },
]

# Columns of the stored input and output compared between the two paths (not ids, times,
# request ids, batch numbering or latency, which differ by construction).
_INPUT_SQL = (
    "SELECT to_jsonb(i) - 'id' - 'received_at' - 'request_id' - 'client_request_id' "
    "- 'batch_id' - 'batch_row' - 'source', "
    "to_jsonb(p) - 'id' - 'input_id' - 'created_at' - 'record_mac' - 'latency_ms' "
    "- 'probability' - 'explanation', p.probability, p.explanation, i.source, i.batch_row, "
    "i.batch_id, p.id "
    "FROM prediction_inputs i JOIN predictions p ON p.input_id = i.id "
    "WHERE i.client_request_id = :r ORDER BY i.batch_row"
)


def _post(client: TestClient, path: str, body: Any, key: str) -> tuple[str, Any]:
    request_id = f"batch-path-{uuid.uuid4().hex}"
    r = client.post(path, json=body, headers={**auth(key), "X-Request-ID": request_id})
    assert r.status_code == 201, r.text
    return request_id, r.json()


def _rows(database: Database, request_id: str) -> list[Any]:
    with database.owner_engine().connect() as c:
        return list(c.execute(text(_INPUT_SQL), {"r": request_id}))


def _same_explanation(batch: dict[str, Any], single: dict[str, Any], answer: bool = True) -> None:
    # An answer keeps the documented key order; jsonb stores keys sorted.
    assert list(batch) == list(single)
    assert batch["valeur_de_base"] == single["valeur_de_base"]
    assert batch["logit"] == pytest.approx(single["logit"], abs=TOLERANCE)
    for side in ("facteurs_hausse", "facteurs_baisse"):
        assert len(batch[side]) == len(single[side])
        for b, s in zip(batch[side], single[side], strict=True):
            assert list(b) == list(s)
            if answer:
                assert list(b) == ["variable", "libelle", "valeur", "contribution"]
            assert (b["variable"], b["libelle"], b["valeur"]) == (
                s["variable"],
                s["libelle"],
                s["valeur"],
            )
            assert type(b["valeur"]) is type(s["valeur"])
            assert b["contribution"] == pytest.approx(s["contribution"], abs=TOLERANCE)


def test_batch_answers_and_records_as_single_predictions(
    client: TestClient, keys: Keys, database: Database
) -> None:
    batch_request, batch = _post(
        client, "/v1/predictions/batch", {"employes": EMPLOYEES}, keys.predicteur
    )
    assert list(batch) == ["batch_id", "nombre", "predictions"]
    assert batch["nombre"] == len(EMPLOYEES) == len(batch["predictions"])
    batch_rows = _rows(database, batch_request)
    assert [row[4] for row in batch_rows] == ["batch"] * len(EMPLOYEES)
    assert [row[5] for row in batch_rows] == list(range(len(EMPLOYEES)))
    assert {str(row[6]) for row in batch_rows} == {batch["batch_id"]}
    assert [p["prediction_id"] for p in batch["predictions"]] == [row[7] for row in batch_rows]

    for employee, answered, stored in zip(EMPLOYEES, batch["predictions"], batch_rows, strict=True):
        single_request, single = _post(client, "/v1/predictions", employee, keys.predicteur)
        assert list(answered) == list(single)
        different = {"prediction_id", "horodatage", "probabilite_depart", "lecture", "explication"}
        assert {k: v for k, v in answered.items() if k not in different} == {
            k: v for k, v in single.items() if k not in different
        }
        assert answered["probabilite_depart"] == pytest.approx(
            single["probabilite_depart"], abs=TOLERANCE
        )
        _same_explanation(answered["explication"], single["explication"])
        (single_stored,) = _rows(database, single_request)
        # Same recorded input (fields and payload) and output; the stored explanation and
        # probability are what was answered.
        assert stored[0] == single_stored[0]
        assert stored[1] == single_stored[1]
        assert stored[2] == answered["probabilite_depart"]
        assert stored[3] == answered["explication"]
        _same_explanation(stored[3], single_stored[3], answer=False)


def test_every_batch_record_mac_verifies(
    client: TestClient, keys: Keys, database: Database
) -> None:
    request_id, batch = _post(
        client, "/v1/predictions/batch", {"employes": EMPLOYEES}, keys.predicteur
    )
    ids = [p["prediction_id"] for p in batch["predictions"]]
    key = chain.AuditKey.derive(TEST_AUDIT_KEY)
    with database.owner_engine().connect() as c:
        rows = list(
            c.execute(text(chain.RECORD_SQL + "WHERE p.id = ANY(:ids) ORDER BY p.id"), {"ids": ids})
        )
    assert [row[0] for row in rows] == sorted(ids)
    for row in rows:
        assert row[1] == chain.record_mac(key, list(row[2:]))
    # A changed value no longer matches (the check above can fail).
    tampered = list(rows[0][2:])
    tampered[0] = request_id + "x"
    assert rows[0][1] != chain.record_mac(key, tampered)


def test_batch_errors_name_each_field_and_row(
    client: TestClient, keys: Keys, database: Database
) -> None:
    with database.owner_engine().connect() as c:
        before = c.scalar(text("SELECT count(*) FROM prediction_inputs"))
    bad = [
        EXAMPLE_EMPLOYEE,
        {**EXAMPLE_EMPLOYEE, "age": 99},
        {**EXAMPLE_EMPLOYEE, "revenu_mensuel": "12"},
        {**EXAMPLE_EMPLOYEE, "heures_supplementaires": 1},
        {**EXAMPLE_EMPLOYEE, "inconnu": 1},
    ]
    r = client.post("/v1/predictions/batch", json={"employes": bad}, headers=auth(keys.predicteur))
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"champ": "age", "message": "doit être inférieur ou égal à 70", "ligne": 1},
        {"champ": "revenu_mensuel", "message": "doit être un nombre entier", "ligne": 2},
        {
            "champ": "heures_supplementaires",
            "message": "doit être un booléen (true ou false)",
            "ligne": 3,
        },
        {
            "champ": "inconnu",
            "message": "champ inconnu : il ne fait pas partie du schéma",
            "ligne": 4,
        },
    ]
    with database.owner_engine().connect() as c:
        assert c.scalar(text("SELECT count(*) FROM prediction_inputs")) == before
