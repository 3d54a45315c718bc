"""The per-employee reads of the audit trail are index-backed (EXPLAIN on a filled trail).

10,000 predictions are written through the group-commit writer's own statement
(:func:`attrition.db.writer.insert_many`) inside a transaction that is rolled back, the
tables are analysed, then the plans of the API's statements are read with the planner's
default settings: ``enable_seqscan`` stays on (checked), nothing is forced. Below a few
thousand rows PostgreSQL rightly prefers to read a small table in full; from 10,000 rows
one employee's history, their GDPR export and a deep keyset page must not read the trail in
full, so their cost follows what they return, not the size of the trail. ``make bench-scale``
checks the same plans at 1 M and 10 M rows and times them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from attrition.data.vocabulary import FEATURE_NAMES
from attrition.db.audit import PredictionFilter, PredictionRecord, list_query
from attrition.db.chain import AuditKey, record_mac
from attrition.db.engine import Database, libpq_conninfo
from attrition.db.plans import Scan, scans, sequential
from attrition.db.writer import insert_many

ROWS = 10_000
PROBE_ROWS = 20
TRAIL = ("prediction_inputs", "predictions")
KEY = AuditKey.derive("scale-plans-test-key-0123456789abcdef")


def _features(database: Database) -> list[dict[str, Any]]:
    with database.owner_engine().connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT id_employee, {', '.join(FEATURE_NAMES)} FROM employee_features "
                "ORDER BY id_employee"
            )
        ).mappings()
        return [
            {k: (float(v) if k == "augmentation_salaire_precedente" else v) for k, v in r.items()}
            for r in rows
        ]


def _record(
    n: int, row: dict[str, Any], id_employee: int | None, model_id: int
) -> PredictionRecord:
    features = {k: row[k] for k in FEATURE_NAMES}
    payload = {**features, **({"id_employee": id_employee} if id_employee else {})}
    return PredictionRecord(
        request_id=f"plan-{n}",
        api_key_id=None,
        source="api",
        id_employee=id_employee,
        features=features,
        payload=payload,
        model_version_id=model_id,
        probability=0.25,
        label="reste",
        threshold=0.4,
        risk_level="moyen",
        explanation={"facteurs_hausse": [], "facteurs_baisse": []},
        latency_ms=0.2,
    )


def _plans(database: Database, model_version: str) -> dict[str, Any]:
    rows = _features(database)
    probe = rows[0]["id_employee"]
    every = ROWS // PROBE_ROWS

    def linked(n: int, row: dict[str, Any]) -> int | None:
        # The probe gets exactly PROBE_ROWS predictions spread over the trail; half of the
        # others name their employee, as a mix of HR screens and anonymous API calls would.
        if n % every == 0:
            return probe
        return row["id_employee"] if row["id_employee"] != probe and n % 3 else None

    async def main() -> dict[str, Any]:
        async with await psycopg.AsyncConnection.connect(
            libpq_conninfo(database.owner_url)
        ) as conn:
            async with conn.transaction(force_rollback=True):
                cur = await conn.execute(
                    "SELECT count(*) FROM prediction_inputs WHERE id_employee = %s", (probe,)
                )
                already = (await cur.fetchone())[0]  # type: ignore[index]
                cur = await conn.execute("SELECT id FROM model_versions WHERE is_active")
                model_id = (await cur.fetchone())[0]  # type: ignore[index]
                written = []
                for start in range(0, ROWS, 1000):
                    batch = [
                        _record(n, rows[n % len(rows)], linked(n, rows[n % len(rows)]), model_id)
                        for n in range(start, start + 1000)
                    ]
                    for record in batch:  # as the service signs what it answered
                        record.record_mac = record_mac(KEY, record.mac_values())
                    written += await insert_many(conn, batch)
                await conn.execute("ANALYZE prediction_inputs")
                await conn.execute("ANALYZE predictions")
                cur = await conn.execute("SHOW enable_seqscan")
                seqscan = (await cur.fetchone())[0]  # type: ignore[index]
                deep = written[ROWS // 10].prediction_id
                mine = PredictionFilter(id_employee=probe)
                out = {
                    "enable_seqscan": seqscan,
                    "history": await scans(conn, *list_query(mine, after=None, limit=51)),
                    "export": await scans(conn, *list_query(mine, after=None, limit=1_000_000)),
                    "deep": await scans(
                        conn, *list_query(PredictionFilter(), after=deep, limit=51)
                    ),
                }
                result = await conn.execute(*list_query(mine, after=None, limit=1_000_000))
                # Other tests of the session may have predicted for the probe already.
                out["probe_rows"] = len(await result.fetchall()) - already
                return out

    return asyncio.run(main())


@pytest.fixture(scope="module")
def plans(database: Database, model_version: str) -> dict[str, Any]:
    return _plans(database, model_version)


def _indexes(found: list[Scan]) -> set[str]:
    return {s.index for s in found if s.index}


def test_the_planner_is_left_at_its_defaults(plans: dict[str, Any]) -> None:
    assert plans["enable_seqscan"] == "on"
    assert plans["probe_rows"] == PROBE_ROWS


def test_one_employee_history_reads_their_rows_through_the_employee_index(
    plans: dict[str, Any],
) -> None:
    assert sequential(plans["history"], TRAIL) == []
    assert "ix_prediction_inputs_id_employee" in _indexes(plans["history"])


def test_the_gdpr_export_of_one_employee_is_index_backed(plans: dict[str, Any]) -> None:
    assert sequential(plans["export"], TRAIL) == []
    assert "ix_prediction_inputs_id_employee" in _indexes(plans["export"])


def test_a_deep_keyset_page_starts_from_the_primary_key(plans: dict[str, Any]) -> None:
    assert sequential(plans["deep"], TRAIL) == []
    assert "pk_predictions" in _indexes(plans["deep"])


def test_sequential_names_only_full_reads_of_the_given_relations() -> None:
    found = [
        Scan("Seq Scan", "predictions", None),
        Scan("Index Scan", "prediction_inputs", "pk_prediction_inputs"),
        Scan("Seq Scan", "model_versions", None),
    ]
    assert sequential(found, TRAIL) == ["predictions"]
