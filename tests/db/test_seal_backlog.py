"""Sealing a backlog: each batch reads what it seals, not what was sealed before it.

``PREFIX`` predictions are written through the group-commit writer's statement and sealed by
the real sealer, in a transaction rolled back at the end; ``TAIL`` more are written and left
in the queue; the tables are analysed, as autovacuum would have done. The statement that
picks the next batch is then run under ``EXPLAIN (ANALYZE, BUFFERS)``: the rows and buffers
it reads from ``predictions`` and ``audit_chain`` must be bounded by the batch size. A plan
that merges the queue with the trail or with the chain from their first row reads the whole
sealed prefix for every batch, which made sealing 9 M rows superlinear. No timing.

Then the queue's odd entries: one already sealed, one whose prediction is gone. Neither is
sealed (again), neither stops the batch, and the batch stays in prediction id order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from attrition.db import chain
from attrition.db.engine import Database
from attrition.db.writer import insert_many
from tests.db.trail import features, fill, record, rolled_back
from tests.helpers import TEST_AUDIT_KEY

PREFIX = 10_000
TAIL = 500
LIMIT = 100
KEY = chain.AuditKey.derive(TEST_AUDIT_KEY)
TRAIL = ("predictions", "audit_chain")


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _reads(plan: dict[str, Any], relations: tuple[str, ...]) -> dict[str, int]:
    """Rows and buffers the scans of ``relations`` read, over all their loops."""
    rows = buffers = 0
    for node in _nodes(plan):
        if node.get("Relation Name") in relations:
            rows += int(node["Actual Rows"]) * int(node["Actual Loops"])
            rows += int(node.get("Rows Removed by Filter", 0)) * int(node["Actual Loops"])
            buffers += int(node["Shared Hit Blocks"]) + int(node["Shared Read Blocks"])
    return {"rows": rows, "buffers": buffers}


def _run(database: Database) -> dict[str, Any]:
    rows = features(database)

    async def main() -> dict[str, Any]:
        async with rolled_back(database) as (conn, model_id):
            await fill(conn, rows, 0, PREFIX, model_id, KEY, prefix="backlog")
            # Whatever other tests of the session left unsealed goes first, then ours.
            while (await chain.seal(conn, KEY, limit=5000, wait=True))[0]:
                pass
            tail = await fill(conn, rows, PREFIX, TAIL, model_id, KEY, prefix="backlog")
            for table in ("predictions", "audit_chain", "audit_pending"):
                await conn.execute(f"ANALYZE {table}")
            cur = await conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + chain.PENDING_SQL, (LIMIT,)
            )
            plan = (await cur.fetchone())[0][0]["Plan"]  # type: ignore[index]

            # A sealed prediction queued again and a queued prediction since deleted,
            # both ahead of the tail in id order.
            cur = await conn.execute(
                "SELECT prediction_id FROM audit_chain ORDER BY position DESC LIMIT 1"
            )
            sealed = (await cur.fetchone())[0]  # type: ignore[index]
            await conn.execute(
                "INSERT INTO audit_pending (prediction_id) VALUES (%s), (-1)", (sealed,)
            )
            n, checkpoint = await chain.seal(conn, KEY, limit=LIMIT, wait=True)
            cur = await conn.execute(
                "SELECT prediction_id FROM audit_chain ORDER BY position DESC LIMIT %s",
                (LIMIT,),
            )
            last = [r[0] for r in await cur.fetchall()][::-1]
            cur = await conn.execute(
                "SELECT count(*) FROM audit_chain WHERE prediction_id = %s", (sealed,)
            )
            twice = (await cur.fetchone())[0]  # type: ignore[index]
            return {
                "plan": plan,
                "tail": tail,
                "sealed": n,
                "checkpoint": checkpoint,
                "last": last,
                "twice": twice,
            }

    return asyncio.run(main())


@pytest.fixture(scope="module")
def backlog(database: Database, model_version: str) -> dict[str, Any]:
    return _run(database)


def test_a_batch_reads_what_it_seals_not_the_sealed_prefix(backlog: dict[str, Any]) -> None:
    plan = backlog["plan"]
    assert plan["Actual Rows"] == LIMIT
    reads = _reads(plan, TRAIL)
    # One index probe of each table per row of the batch: a few buffers each. The old plan
    # read the PREFIX sealed rows of both tables again (10,000+ rows, thousands of buffers).
    assert reads["rows"] <= 2 * LIMIT, reads
    assert reads["buffers"] <= 10 * LIMIT, reads
    assert not [n["Node Type"] for n in _nodes(plan) if n.get("Relation Name") in TRAIL
                and n["Node Type"] == "Seq Scan"]  # fmt: skip


def test_odd_queue_entries_neither_stop_nor_enter_the_batch(backlog: dict[str, Any]) -> None:
    assert backlog["sealed"] == LIMIT
    assert backlog["last"] == backlog["tail"][:LIMIT]
    assert backlog["twice"] == 1
    assert backlog["checkpoint"].prediction_id == backlog["tail"][LIMIT - 1]


def test_one_sealing_round_seals_a_backlog_larger_than_its_batch(
    database: Database, model_version: str
) -> None:
    """The background sealer empties the queue each round, a batch at a time.

    It sealed one batch (5,000) per round, every 5 s: under a sustained load of more than
    about 1,000 predictions a second the queue grew without end (seen in ``make bench``:
    15,000 predictions at concurrency 32 took 17 s to be sealed).
    """
    rows = features(database)

    async def main() -> tuple[int, Any, int, int]:
        async with rolled_back(database) as (conn, model_id):
            while (await chain.seal(conn, KEY, limit=5000, wait=True))[0]:
                pass  # whatever other tests of the session left unsealed
            await fill(conn, rows, 0, 2 * LIMIT + 50, model_id, KEY, prefix="round")
            sealed, checkpoint = await chain.seal_pending(conn, KEY, limit=LIMIT)
            cur = await conn.execute("SELECT count(*) FROM audit_pending")
            left = (await cur.fetchone())[0]  # type: ignore[index]
            cur = await conn.execute("SELECT max(position) FROM audit_chain")
            head = (await cur.fetchone())[0]  # type: ignore[index]
            return sealed, checkpoint, int(left), int(head)

    sealed, checkpoint, left, head = asyncio.run(main())
    assert (sealed, left) == (2 * LIMIT + 50, 0)
    assert checkpoint is not None and checkpoint.position == head


def test_a_stored_mac_that_is_not_a_digest_is_sealed_as_stored(
    database: Database, model_version: str
) -> None:
    """The sealer sends its arrays as literals only when every MAC is a hex digest.

    A MAC the database holds is not trusted to be one: with a comma or a brace in it, a
    literal would split it into two elements and shift every link after it.
    """
    rows = features(database)
    odd = ["a,b}", '"{x}"', "c\\d"]

    async def main() -> list[tuple[int, str]]:
        async with rolled_back(database) as (conn, model_id):
            while (await chain.seal(conn, KEY, limit=5000, wait=True))[0]:
                pass
            batch = []
            for n, mac in enumerate(odd):
                r = record(n, rows[n], None, model_id, KEY, prefix="odd")
                r.record_mac = mac
                batch.append(r)
            ids = [w.prediction_id for w in await insert_many(conn, batch)]
            ids += await fill(conn, rows, 10, 2, model_id, KEY, prefix="odd")
            sealed, _ = await chain.seal(conn, KEY, limit=LIMIT, wait=True)
            assert sealed == len(ids)
            cur = await conn.execute(
                "SELECT prediction_id, record_mac FROM audit_chain "
                "WHERE prediction_id = ANY(%s) ORDER BY position",
                (ids,),
            )
            return [(r[0], r[1]) for r in await cur.fetchall()]

    chained = asyncio.run(main())
    assert [mac for _, mac in chained[:3]] == odd
    assert len(chained) == 5
    assert chain._hex(["0" * 64, "f" * 64]) == "{" + "0" * 64 + "," + "f" * 64 + "}"
    assert chain._hex(["0" * 64, "a,b"]) == ["0" * 64, "a,b"]
    assert chain._ints([3, 10, 42]) == "{3,10,42}"
