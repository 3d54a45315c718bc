"""COPY writes the rows that the JSON statement writes, value for value (attrition.db.bulk)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import pytest
from sqlalchemy import text

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.data.vocabulary import FEATURE_NAMES
from attrition.db import bulk, chain
from attrition.db.audit import INPUT_COLUMNS, OUTPUT_COLUMNS, PredictionRecord, Written
from attrition.db.bulk import copy_predictions
from attrition.db.engine import Database, libpq_conninfo
from attrition.db.writer import insert_many
from tests.db.writing import record
from tests.helpers import TEST_AUDIT_KEY

# Everything stored but the ids and the times (compared separately).
_STORED = (
    "SELECT to_jsonb(i) - 'id' - 'received_at' - 'request_id', "
    "to_jsonb(p) - 'id' - 'input_id' - 'created_at', i.id, p.id, p.created_at, i.received_at "
    "FROM predictions p JOIN prediction_inputs i ON i.id = p.input_id "
    "WHERE i.request_id = :r ORDER BY i.batch_row"
)


BATCH_ID = str(uuid.uuid4())


def _records(request_id: str, model_id: int) -> list[PredictionRecord]:
    awkward = 'tab\there, line\nend, cr\rback\\slash "quoted" é ✓ \\N'
    without_optional = {k: v for k, v in EXAMPLE_EMPLOYEE.items() if k != "genre"}
    made = [
        record(request_id, model_id, batch_row=0, batch_id=BATCH_ID),
        record(
            request_id,
            model_id,
            batch_row=1,
            client_request_id=awkward,
            idempotency_key=awkward,
            request_hash="0" * 64,
            api_key_id=None,
            source="batch",
            features={**without_optional, "augmentation_salaire_precedente": 11},
            payload={**without_optional, "note": awkward, "nested": [1, 2.5, None, True]},
            probability=1e-05,
            threshold=1 / 3,
            latency_ms=12.0,
            explanation={
                "valeur_de_base": np.float64(-2.5),
                "logit": 1 / 7,
                "facteurs_hausse": [
                    {
                        "variable": "age",
                        "valeur": np.int64(41),
                        "libelle": awkward,
                        "contribution": np.float64(0.25),
                    }
                ],
                "facteurs_baisse": [],
            },
        ),
        record(
            request_id,
            model_id,
            batch_row=2,
            id_employee=1,
            features={**EXAMPLE_EMPLOYEE, "augmentation_salaire_precedente": Decimal("11.50")},
            payload={"id_employee": 1, "augmentation_salaire_precedente": 11.5},
            probability=0.999999999999,
            label="depart",
            risk_level="eleve",
        ),
    ]
    key = chain.AuditKey.derive(TEST_AUDIT_KEY)
    for one in made:
        one.record_mac = chain.record_mac(key, one.mac_values())
    return made


def _write(database: Database, writer: Any, records: list[PredictionRecord]) -> list[Written]:
    async def main() -> list[Written]:
        async with await psycopg.AsyncConnection.connect(libpq_conninfo(database.app_url)) as conn:
            async with conn.transaction():
                return list(await writer(conn, records))

    return asyncio.run(main())


def _stored(database: Database, request_id: str) -> list[Any]:
    with database.owner_engine().connect() as conn:
        return list(conn.execute(text(_STORED), {"r": request_id}))


def test_copy_stores_what_insert_many_stores(
    database: Database,
    model_id: int,
) -> None:
    by_json, by_copy = f"bulk-json-{uuid.uuid4().hex}", f"bulk-copy-{uuid.uuid4().hex}"
    json_written = _write(database, insert_many, _records(by_json, model_id))
    copy_written = _write(database, copy_predictions, _records(by_copy, model_id))
    json_rows, copy_rows_ = _stored(database, by_json), _stored(database, by_copy)
    assert len(json_rows) == len(copy_rows_) == 3
    for a, b in zip(json_rows, copy_rows_, strict=True):
        # Same inputs and outputs (the MAC differs with the request id, as it must).
        assert a[0] == b[0]
        assert {k: v for k, v in a[1].items() if k != "record_mac"} == {
            k: v for k, v in b[1].items() if k != "record_mac"
        }
    # Results in the records' order, with the stored ids and time.
    assert [(w.input_id, w.prediction_id, w.created_at) for w in copy_written] == [
        (row[2], row[3], row[4]) for row in copy_rows_
    ]
    assert {row[5] for row in copy_rows_} == {w.created_at for w in copy_written}
    assert len(json_written) == 3
    # The stored values are those the record MAC covers: the trail verifies.
    key = chain.AuditKey.derive(TEST_AUDIT_KEY)
    with database.owner_engine().connect() as conn:
        macs = list(
            conn.execute(
                text(chain.RECORD_SQL + "WHERE p.id = ANY(:ids)"),
                {"ids": [w.prediction_id for w in copy_written]},
            )
        )
        queued = conn.scalar(
            text("SELECT count(*) FROM audit_pending WHERE prediction_id = ANY(:ids)"),
            {"ids": [w.prediction_id for w in copy_written]},
        )
    assert len(macs) == 3 and all(row[1] == chain.record_mac(key, list(row[2:])) for row in macs)
    assert queued == 3  # the sealing queue's trigger fired for COPY too


def test_a_refused_row_writes_nothing(
    database: Database,
    model_id: int,
) -> None:
    request_id = f"bulk-bad-{uuid.uuid4().hex}"
    records = _records(request_id, model_id)
    records[2].probability = 1.5  # ck_predictions_probability
    with pytest.raises(psycopg.errors.CheckViolation):
        _write(database, copy_predictions, records)
    assert _stored(database, request_id) == []
    with database.owner_engine().connect() as conn:
        assert (
            conn.scalar(
                text("SELECT count(*) FROM prediction_inputs WHERE request_id = :r"),
                {"r": request_id},
            )
            == 0
        )


def test_copy_columns_are_those_of_the_audit_trail() -> None:
    assert (*bulk.INPUT_SCALARS, *FEATURE_NAMES, "payload") == INPUT_COLUMNS
    assert (*bulk.OUTPUT_BEFORE, "explanation", *bulk.OUTPUT_AFTER) == OUTPUT_COLUMNS
