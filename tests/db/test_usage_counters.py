"""The daily-quota count in PostgreSQL: taken with the write it pays for, exact under races."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text

from attrition.db import usage
from attrition.db.audit import insert_predictions
from attrition.db.engine import Database
from attrition.db.writer import LARGE_GROUP, Committed, GroupCommitWriter
from tests.db.writing import record, with_writer
from tests.helpers import owner_count


def _take(key: str, amount: int, ceiling: int, day: int = 21_000) -> usage.Take:
    return usage.Take("test", key, day, amount, ceiling)


def _written(database: Database, prefix: str) -> list[str]:
    with database.owner_engine().connect() as conn:
        return list(
            conn.scalars(
                text(
                    "SELECT i.request_id FROM predictions p "
                    "JOIN prediction_inputs i ON i.id = p.input_id "
                    "WHERE starts_with(i.request_id, :p) ORDER BY p.id"
                ),
                {"p": prefix},
            )
        )


def test_racing_writes_never_pass_the_ceiling(database: Database, model_id: int) -> None:
    """1,600 concurrent writes of 1 under a ceiling of 1,000: exactly 1,000 recorded."""
    prefix = f"race-{uuid.uuid4().hex[:8]}-"

    async def work(writer: GroupCommitWriter, _pool: Any) -> list[Any]:
        writes = [
            writer.write([record(f"{prefix}{n}", model_id)], _take(prefix, 1, 1000))
            for n in range(1600)
        ]
        return await asyncio.gather(*writes, return_exceptions=True)

    results = with_writer(database, work)
    passed = [r for r in results if isinstance(r, Committed)]
    refused = [r for r in results if isinstance(r, usage.QuotaExceeded)]
    assert len(passed) == 1000 and len(refused) == 600
    assert sorted(r.used for r in passed) == list(range(1, 1001))
    assert {r.used for r in refused} == {1000}
    assert len(_written(database, prefix)) == 1000


def test_a_group_over_the_ceiling_is_written_one_by_one(database: Database, model_id: int) -> None:
    """Together 4 + 3 + 2 pass a ceiling of 6: alone, in order, 4 passes, 3 does not, 2 does."""
    prefix = f"group-{uuid.uuid4().hex[:8]}-"

    async def work(writer: GroupCommitWriter, _pool: Any) -> list[Any]:
        writes = [
            writer.write(
                [record(f"{prefix}{n}-{row}", model_id) for row in range(n)], _take(prefix, n, 6)
            )
            for n in (4, 3, 2)
        ]
        # Another key and a request without a quota in the same group are not held back.
        writes.append(writer.write([record(f"{prefix}other", model_id)], _take("other", 1, 9)))
        writes.append(writer.write([record(f"{prefix}free", model_id)]))
        return await asyncio.gather(*writes, return_exceptions=True)

    four, three, two, other, free = with_writer(database, work)
    assert (four.used, len(four.written)) == (4, 4)
    assert isinstance(three, usage.QuotaExceeded) and three.used == 4
    assert (two.used, len(two.written)) == (6, 2)
    assert other.used == 1 and free.used is None and len(free.written) == 1
    assert sorted(_written(database, prefix)) == sorted(
        [f"{prefix}4-{r}" for r in range(4)]
        + [f"{prefix}2-{r}" for r in range(2)]
        + [f"{prefix}other", f"{prefix}free"]
    )


def test_a_take_larger_than_the_ceiling_and_a_new_day(database: Database, model_id: int) -> None:
    prefix = f"big-{uuid.uuid4().hex[:8]}-"

    async def work(writer: GroupCommitWriter, _pool: Any) -> list[Any]:
        out = []
        for n, (amount, day) in enumerate([(5, 1), (3, 1), (1, 1), (1, 2)]):
            rows = [record(f"{prefix}{n}-{r}", model_id) for r in range(amount)]
            try:
                out.append((await writer.write(rows, _take(prefix, amount, 3, day))).used)
            except usage.QuotaExceeded as exc:
                out.append(-exc.used)
        return out

    # Alone above the ceiling (nothing used yet), the ceiling, one too many, the next day.
    assert with_writer(database, work) == [-0, 3, -3, 1]
    assert len(_written(database, prefix)) == 4


def test_in_a_transaction_the_take_rolls_back_with_the_write(
    database: Database, model_id: int
) -> None:
    """The one-transaction path (idempotency keys): a failed insert leaves the count as it was."""
    key = f"tx-{uuid.uuid4().hex[:8]}"

    async def work() -> tuple[int, int]:
        async with AsyncConnectionPool(database.app_conninfo, min_size=1, max_size=2) as pool:
            async with pool.connection() as conn:
                async with conn.transaction():
                    first = await usage.take(conn, _take(key, 2, 3))
                    await insert_predictions(conn, [record(f"{key}-ok", model_id)])
                with pytest.raises(Exception, match="probability"):
                    async with conn.transaction():
                        await usage.take(conn, _take(key, 1, 3))
                        bad = record(f"{key}-bad", model_id, probability=2.0)
                        await insert_predictions(conn, [bad])
                with pytest.raises(usage.QuotaExceeded) as refused:
                    async with conn.transaction():
                        await usage.take(conn, _take(key, 2, 3))
                return first, refused.value.used

    assert asyncio.run(work()) == (2, 2)
    assert _written(database, key) == [f"{key}-ok"]


def test_a_large_group_pays_its_takes_before_its_copy(database: Database, model_id: int) -> None:
    """From LARGE_GROUP records a write goes by COPY, in its own turn: same takes, same
    refusals (nothing written), same rows; small writes meanwhile are not held back."""
    prefix = f"copy-{uuid.uuid4().hex[:8]}-"
    size = LARGE_GROUP

    async def work(writer: GroupCommitWriter, _pool: Any) -> list[Any]:
        def batch(name: str, n: int) -> list[Any]:
            return [record(f"{prefix}{name}-{row}", model_id) for row in range(n)]

        first = await writer.write(batch("a", size), _take(prefix, size, size + 10))
        writes = [
            writer.write(batch("b", size), _take(prefix, size, size + 10)),  # passes the ceiling
            writer.write(batch("c", 5), _take(f"{prefix}c", 5, 5)),
            writer.write(batch("other", 3), _take(f"{prefix}other", 3, 3)),
            writer.write(batch("free", 2)),
        ]
        return [first, *await asyncio.gather(*writes, return_exceptions=True)]

    a, b, c, other, free = with_writer(database, work)
    assert (a.used, len(a.written)) == (size, size)
    assert isinstance(b, usage.QuotaExceeded) and b.used == size
    assert (c.used, len(c.written)) == (5, 5)
    assert (other.used, len(other.written)) == (3, 3) and len(free.written) == 2
    stored = _written(database, prefix)
    assert len(stored) == size + 5 + 3 + 2
    assert not any(r.startswith(f"{prefix}b-") for r in stored)


def _last_input_id(database: Database) -> int:
    return owner_count(
        database,
        "SELECT last_value FROM pg_sequences WHERE sequencename = 'prediction_inputs_id_seq'",
    )


def test_a_group_inserts_its_rows_before_it_locks_its_key_count(
    database: Database, model_id: int
) -> None:
    """While another transaction holds a key's count, a group of that key has already inserted
    its rows and waits only to add to the count: two groups of one key (two processes) wait
    for each other's commit, not for each other's whole write."""
    key = f"order-{uuid.uuid4().hex[:8]}"

    async def work(writer: GroupCommitWriter, pool: Any) -> tuple[int, int, bool, Any]:
        await writer.write([record(f"{key}-first", model_id)], _take(key, 1, 100))
        async with pool.connection() as holder:
            async with holder.transaction():
                await holder.execute(
                    "SELECT used FROM usage_counters WHERE counter = 'test' AND key = %s "
                    "FOR UPDATE",
                    (key,),
                )
                before = await asyncio.to_thread(_last_input_id, database)
                rows = [record(f"{key}-{n}", model_id) for n in range(3)]
                task = asyncio.create_task(writer.write(rows, _take(key, 3, 100)))
                during = before
                for _ in range(100):
                    await asyncio.sleep(0.02)
                    during = await asyncio.to_thread(_last_input_id, database)
                    if during >= before + 3:
                        break
                waiting = not task.done()
        (committed,) = await asyncio.gather(task, return_exceptions=True)
        return before, during, waiting, committed

    before, during, waiting, committed = with_writer(database, work)
    assert during - before == 3  # the rows are in, uncommitted ...
    assert waiting  # ... and the write waits for the count
    assert isinstance(committed, Committed) and committed.used == 4
    assert len(_written(database, f"{key}-")) == 4
