"""The retention purge reads what it removes, not the whole trail.

In a transaction rolled back at the end: ``TRAIL`` predictions are written through the
writer's statement and sealed; the oldest part of the chain (what other tests left, plus
``OLD`` of ours) is dated 400 days back; the purge then removes that prefix. The rows it
reads from the trail's tables (``pg_stat_xact_user_tables``: sequential and index reads of
this transaction) must be bounded by what it removes: a purge that scans the whole trail to
find the prefix became slower per row as the trail grew (52 k rows/s at 10 k, 3.3 k at 10 M).
No timing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from attrition.db import chain
from attrition.db.engine import Database
from attrition.db.retention import purge
from tests.db.trail import features, fill, rolled_back
from tests.helpers import TEST_AUDIT_KEY

TRAIL = 20_000
OLD = 100
KEY = chain.AuditKey.derive(TEST_AUDIT_KEY)
TABLES = ("predictions", "prediction_inputs", "audit_chain")
READS = (
    "SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0) "
    "FROM pg_stat_xact_user_tables WHERE relname = ANY(%s)"
)


def _run(database: Database) -> tuple[int, int]:
    rows = features(database)

    async def main() -> tuple[int, int]:
        async with rolled_back(database) as (conn, model_id):
            ids = await fill(conn, rows, 0, TRAIL, model_id, KEY, prefix="purge")
            while (await chain.seal(conn, KEY, limit=5000, wait=True))[0]:
                pass
            await conn.execute("SET LOCAL attrition.allow_purge = 'on'")
            old = datetime.now(UTC) - timedelta(days=400)
            await conn.execute(
                "UPDATE predictions SET created_at = %s WHERE id <= %s", (old, ids[OLD - 1])
            )
            await conn.execute(
                "UPDATE prediction_inputs SET received_at = %s WHERE id IN "
                "(SELECT input_id FROM predictions WHERE id <= %s)",
                (old, ids[OLD - 1]),
            )
            await conn.execute("SET LOCAL attrition.allow_purge = 'off'")
            for table in (*TABLES, "audit_pending"):
                await conn.execute(f"ANALYZE {table}")
            cur = await conn.execute(READS, (list(TABLES),))
            before = int((await cur.fetchone())[0])  # type: ignore[index]
            report = await purge(conn, datetime.now(UTC) - timedelta(days=300))
            cur = await conn.execute(READS, (list(TABLES),))
            after = int((await cur.fetchone())[0])  # type: ignore[index]
            return report.predictions, after - before

    return asyncio.run(main())


def test_the_purge_reads_what_it_removes(database: Database, model_version: str) -> None:
    removed, read = _run(database)
    assert removed >= OLD
    # Each removed prediction is read a few times (its link, itself, its input, by index);
    # the rest of the trail (TRAIL - OLD rows, at least 19,900) is not read.
    assert read <= 6 * removed + 100, (removed, read)
