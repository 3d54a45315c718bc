"""`attrition audit verify` streams the trail: its memory does not grow with the trail's size.

The same verification runs on the trail with N more sealed predictions, then with 4 N more
(written through the group-commit writer's statement, sealed by the real sealer, inside a
transaction rolled back at the end). Python's allocations are traced (``tracemalloc``): the
peak of the second run may not exceed the first by more than a fraction of what holding the
3 N extra rows would take. No timing is involved.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import psycopg
import pytest

from attrition.db import chain, verification
from attrition.db.engine import Database
from tests.db.trail import features, fill, rolled_back
from tests.helpers import TEST_AUDIT_KEY

N = 1000
BATCH = 100
KEY = chain.AuditKey.derive(TEST_AUDIT_KEY)


async def _fill(conn: psycopg.AsyncConnection[Any], rows: list[dict[str, Any]], start: int,
                count: int, model_id: int) -> None:  # fmt: skip
    await fill(conn, rows, start, count, model_id, KEY, prefix="stream", chunk=500)
    while (await chain.seal(conn, KEY, limit=5000, wait=True))[0]:
        pass


async def _peak(conn: psycopg.AsyncConnection[Any]) -> tuple[int, verification.Verification]:
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    result = await verification.verify(conn, KEY, batch=BATCH)
    return tracemalloc.get_traced_memory()[1] - base, result


def _measure(database: Database) -> dict[str, Any]:
    rows = features(database)

    async def main() -> dict[str, Any]:
        async with rolled_back(database) as (conn, model_id):
            await _fill(conn, rows, 0, N, model_id)
            tracemalloc.start()
            try:
                small, first = await _peak(conn)
                tracemalloc.stop()
                await _fill(conn, rows, N, 3 * N, model_id)
                tracemalloc.start()
                large, second = await _peak(conn)
            finally:
                tracemalloc.stop()
            cur = await conn.execute("SELECT count(*) FROM audit_chain")
            links = (await cur.fetchone())[0]  # type: ignore[index]
            return {"small": small, "large": large, "first": first, "second": second,
                    "links": links}  # fmt: skip

    return asyncio.run(main())


@pytest.fixture(scope="module")
def measured(database: Database, model_version: str) -> dict[str, Any]:
    return _measure(database)


def test_verify_reads_every_link_of_the_larger_trail(measured: dict[str, Any]) -> None:
    first, second = measured["first"], measured["second"]
    assert second.checked == measured["links"]
    assert second.checked - first.checked == 3 * N
    assert [b.describe() for b in second.breaks] == [b.describe() for b in first.breaks]


def test_verify_memory_does_not_grow_with_the_trail(measured: dict[str, Any]) -> None:
    # Holding one small object per extra row would already take 3 N x 100 bytes.
    growth = measured["large"] - measured["small"]
    assert growth < 3 * N * 100, (measured["small"], measured["large"])
