"""The daily-quota counter in PostgreSQL: atomic under races, bounded, committed without fsync."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from attrition.db import usage
from attrition.db.engine import Database


async def _with_pool(database: Database, work: Any) -> Any:
    async with AsyncConnectionPool(database.app_conninfo, min_size=1, max_size=8) as pool:
        return await work(pool)


@pytest.mark.parametrize("grouped", [False, True], ids=["une-par-une", "groupees"])
def test_racing_takes_never_pass_the_ceiling(database: Database, grouped: bool) -> None:
    """1,600 concurrent takes of 1 from a ceiling of 1,000: exactly 1,000 pass, each count once."""
    key = f"key:race-{grouped}"

    async def work(pool: AsyncConnectionPool[Any]) -> list[tuple[bool, int]]:
        counters = usage.GroupedCounters(pool)
        if grouped:
            takes = [counters.add("test", key, 1, 1000, 21_000) for _ in range(1600)]
        else:
            takes = [usage.add(pool, "test", key, 1, 1000, 21_000) for _ in range(1600)]
        return await asyncio.gather(*takes)

    results = asyncio.run(_with_pool(database, work))
    assert sum(1 for allowed, _ in results if allowed) == 1000
    assert sorted(used for allowed, used in results if allowed) == list(range(1, 1001))
    assert {used for allowed, used in results if not allowed} == {1000}


def test_a_group_over_the_ceiling_is_taken_one_by_one(database: Database) -> None:
    """Together 4 + 3 + 2 pass a ceiling of 6: alone, in order, 4 passes, 3 does not, 2 does."""

    async def work(pool: AsyncConnectionPool[Any]) -> list[tuple[bool, int]]:
        counters = usage.GroupedCounters(pool)
        return await asyncio.gather(
            *(counters.add("test", "key:group", n, 6, 21_003) for n in (4, 3, 2))
        )

    assert asyncio.run(_with_pool(database, work)) == [(True, 4), (False, 4), (True, 6)]


def test_give_back_and_a_take_larger_than_the_ceiling(database: Database) -> None:
    async def work(pool: AsyncConnectionPool[Any]) -> list[tuple[bool, int]]:
        return [
            await usage.add(pool, "test", "key:big", 5, 3, 21_001),  # alone above the ceiling
            await usage.add(pool, "test", "key:big", 3, 3, 21_001),
            await usage.add(pool, "test", "key:big", 1, 3, 21_001),
            await usage.add(pool, "test", "key:big", -2, 3, 21_001),  # a replay gives back
            await usage.add(pool, "test", "key:big", -9, 3, 21_001),  # never below zero
            await usage.add(pool, "test", "key:big", 1, 3, 21_002),  # the next day: from zero
        ]

    assert asyncio.run(_with_pool(database, work)) == [
        (False, 0),
        (True, 3),
        (False, 3),
        (True, 1),
        (True, 0),
        (True, 1),
    ]


def test_a_count_is_committed_without_waiting_for_the_disk(database: Database) -> None:
    """synchronous_commit is off for the counter's own statement only, and back on after."""

    async def work(pool: AsyncConnectionPool[Any]) -> tuple[str, str]:
        async with pool.connection() as conn:
            await conn.set_autocommit(True)
            cur = await conn.execute(
                usage.TAKE.replace(
                    "RETURNING used", "RETURNING current_setting('synchronous_commit')"
                ),
                {
                    "counter": "test",
                    "key": "key:sync",
                    "day": usage.day_of(1),
                    "amount": 1,
                    "ceiling": 9,
                },
            )
            during = (await cur.fetchone())[0]
            cur = await conn.execute("SELECT current_setting('synchronous_commit')")
            after = (await cur.fetchone())[0]
            await conn.set_autocommit(False)
        return during, after

    assert asyncio.run(_with_pool(database, work)) == ("off", "on")
