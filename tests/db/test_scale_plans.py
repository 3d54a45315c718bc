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

from attrition.db.audit import PredictionFilter, list_query
from attrition.db.chain import AuditKey
from attrition.db.engine import Database, libpq_conninfo
from attrition.db.plans import Scan, scans, sequential, sorts
from attrition.db.writer import insert_many
from tests.db.trail import features, record

ROWS = 10_000
PROBE_ROWS = 20
HEAVY_EVERY = 50  # the heavy employee: one row in fifty, 200 of the 10,000
TRAIL = ("prediction_inputs", "predictions")
EMPLOYEE_INDEX = "ix_prediction_inputs_id_employee_id"
KEY = AuditKey.derive("scale-plans-test-key-0123456789abcdef")


def _plans(database: Database, model_version: str) -> dict[str, Any]:
    rows = features(database)
    probe, heavy = rows[0]["id_employee"], rows[1]["id_employee"]
    every = ROWS // PROBE_ROWS

    def linked(n: int, row: dict[str, Any]) -> int | None:
        # The probe gets exactly PROBE_ROWS predictions spread over the trail, the heavy one
        # a fifth of it; half of the others name their employee, as a mix of HR screens and
        # anonymous API calls would.
        if n % every == 0:
            return probe
        if n % HEAVY_EVERY == 1:
            return heavy
        if row["id_employee"] in (probe, heavy):
            return None
        return row["id_employee"] if n % 3 else None

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
                        record(
                            n, rows[n % len(rows)], linked(n, rows[n % len(rows)]), model_id, KEY
                        )
                        for n in range(start, start + 1000)
                    ]
                    written += await insert_many(conn, batch)
                await conn.execute("ANALYZE prediction_inputs")
                await conn.execute("ANALYZE predictions")
                cur = await conn.execute("SHOW enable_seqscan")
                seqscan = (await cur.fetchone())[0]  # type: ignore[index]
                deep = written[ROWS // 10].input_id  # the cursor names the row's arrival
                mine = PredictionFilter(id_employee=probe)
                theirs = PredictionFilter(id_employee=heavy)
                out = {
                    "enable_seqscan": seqscan,
                    "history": await scans(conn, *list_query(mine, after=None, limit=51)),
                    "heavy": await scans(conn, *list_query(theirs, after=None, limit=51)),
                    "heavy_next": await scans(
                        conn, *list_query(theirs, after=written[-50].input_id, limit=51)
                    ),
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


def test_one_employee_history_reads_their_rows_in_order_from_the_employee_index(
    plans: dict[str, Any],
) -> None:
    for name in ("heavy", "heavy_next"):
        assert sequential(plans[name], TRAIL) == [], name
        assert EMPLOYEE_INDEX in _indexes(plans[name]), name
        # The index gives the order: no sort of all the employee's rows before the LIMIT.
        assert sorts(plans[name]) == [], (name, plans[name])
    # A few rows: PostgreSQL may fetch them all and sort them, a cost in rows returned.
    assert sequential(plans["history"], TRAIL) == []
    assert EMPLOYEE_INDEX in _indexes(plans["history"])


def test_the_gdpr_export_of_one_employee_is_index_backed(plans: dict[str, Any]) -> None:
    # Every row of the employee is returned: reading them through the index is the cost.
    assert sequential(plans["export"], TRAIL) == []
    assert EMPLOYEE_INDEX in _indexes(plans["export"])


def test_a_deep_keyset_page_starts_from_the_cursor(plans: dict[str, Any]) -> None:
    assert sequential(plans["deep"], TRAIL) == []
    assert "pk_prediction_inputs" in _indexes(plans["deep"])
    assert sorts(plans["deep"]) == []


def test_sequential_names_only_full_reads_of_the_given_relations() -> None:
    found = [
        Scan("Seq Scan", "predictions", None),
        Scan("Index Scan", "prediction_inputs", "pk_prediction_inputs"),
        Scan("Seq Scan", "model_versions", None),
    ]
    assert sequential(found, TRAIL) == ["predictions"]
    assert sorts([Scan("Limit", None, None), Scan("Sort", None, None), *found]) == ["Sort"]
