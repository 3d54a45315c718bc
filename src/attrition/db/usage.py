"""Usage counters per key and UTC day, in PostgreSQL: the daily quotas of every replica.

One row per (counter, key, day), taken by ONE atomic upsert that adds only while the sum
stays within the ceiling (``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING``): two
replicas, or two workers, racing on one key serialise on the row and never pass the ceiling
together. The statement is its own transaction, committed asynchronously
(``synchronous_commit`` off for it alone): a quota count needs no fsync of its own, and a
crash of PostgreSQL may forget at most the last fraction of a second of counts (a few
predictions more for a key that day), never a recorded prediction. Within one process, the
takes of concurrent requests are grouped (:class:`GroupedCounters`). The table is
:class:`attrition.db.usage_models.UsageCounter`; this module stays free of SQLAlchemy (the
API's workers never import it).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

_EPOCH = date(1970, 1, 1)


# set_config(..., true) lasts until the end of the statement's own transaction, which its
# COMMIT still sees: this one commit does not wait for the WAL to reach the disk.
TAKE = (
    "INSERT INTO usage_counters AS u (counter, key, day, used) "
    "SELECT %(counter)s, %(key)s, %(day)s, %(amount)s "
    "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit "
    "ON CONFLICT (counter, key, day) DO UPDATE SET used = u.used + excluded.used "
    "WHERE u.used + excluded.used <= %(ceiling)s "
    "RETURNING used"
)
GIVE_BACK = (
    "UPDATE usage_counters SET used = greatest(0, used - %(amount)s) "
    "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit "
    "WHERE counter = %(counter)s AND key = %(key)s AND day = %(day)s"
)
READ = (
    "SELECT used FROM usage_counters "
    "WHERE counter = %(counter)s AND key = %(key)s AND day = %(day)s"
)


def day_of(day_number: int) -> date:
    """The UTC date of a day counted from the Unix epoch."""
    return _EPOCH + timedelta(days=day_number)


async def add(
    pool: AsyncConnectionPool[Any], counter: str, key: str, amount: int, ceiling: int, day: int
) -> tuple[bool, int]:
    """Add ``amount`` unless that passes ``ceiling``: (added, count after). Negative: give back."""
    params = {"counter": counter, "key": key, "day": day_of(day), "amount": amount}
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            if amount < 0:
                params["amount"] = -amount
                await conn.execute(GIVE_BACK, params)
                return True, await _read(conn, params)
            return await _take(conn, params, ceiling)
        finally:
            with contextlib.suppress(psycopg.Error):  # a broken connection is discarded
                await conn.set_autocommit(False)


async def _take(
    conn: psycopg.AsyncConnection[Any], params: dict[str, Any], ceiling: int
) -> tuple[bool, int]:
    row = None
    if params["amount"] <= ceiling:  # else a first insert would pass the ceiling at once
        cur = await conn.execute(TAKE, {**params, "ceiling": ceiling})
        row = await cur.fetchone()
    if row is not None:
        return True, int(row[0])
    return False, await _read(conn, params)


async def _read(conn: psycopg.AsyncConnection[Any], params: dict[str, Any]) -> int:
    cur = await conn.execute(READ, params)
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])


@dataclass(slots=True)
class _Pending:
    what: tuple[str, str, int, int]  # counter, key, day, ceiling
    amount: int
    future: asyncio.Future[tuple[bool, int]]


@dataclass(slots=True)
class GroupedCounters:
    """The takes of one process's concurrent requests, one statement per key and group.

    While a statement is in flight, the takes that arrive wait and go together in the next
    one (no timer: a lone take is sent at once, groups grow with the load), as the audit
    writer does (:mod:`attrition.db.writer`): one connection and one row update for many
    requests of a key, instead of one each contending for the same row. A key's takes pass
    together when their sum fits under the ceiling; otherwise each is taken alone, in
    order, so that the ceiling is exact. Gives back (negative amounts) are not grouped.
    """

    pool: AsyncConnectionPool[Any]
    _pending: list[_Pending] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def add(
        self, counter: str, key: str, amount: int, ceiling: int, day: int
    ) -> tuple[bool, int]:
        """As :func:`add`, grouped with the other takes of this process."""
        if amount < 0:
            return await add(self.pool, counter, key, amount, ceiling, day)
        future: asyncio.Future[tuple[bool, int]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending((counter, key, day, ceiling), amount, future))
        if self._task is None or self._task.done():
            # A task of its own: a request cancelled meanwhile must not strand the others.
            self._task = asyncio.create_task(self._run(), name="attrition-usage-counters")
        return await future

    async def _run(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            try:
                await self._flush(group)
            except BaseException as exc:  # never leave a waiter behind
                for item in group:
                    if not item.future.done():
                        item.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    async def _flush(self, group: list[_Pending]) -> None:
        by_key: dict[tuple[str, str, int, int], list[_Pending]] = {}
        for item in group:
            by_key.setdefault(item.what, []).append(item)
        async with self.pool.connection() as conn:
            await conn.set_autocommit(True)
            try:
                for (counter, key, day, ceiling), items in by_key.items():
                    params = {"counter": counter, "key": key, "day": day_of(day)}
                    total = sum(item.amount for item in items)
                    if len(items) > 1 and total <= ceiling:
                        cur = await conn.execute(
                            TAKE, {**params, "amount": total, "ceiling": ceiling}
                        )
                        row = await cur.fetchone()
                        if row is not None:
                            used = int(row[0]) - total
                            for item in items:
                                used += item.amount
                                _resolve(item, (True, used))
                            continue
                    for item in items:
                        _resolve(
                            item, await _take(conn, {**params, "amount": item.amount}, ceiling)
                        )
            finally:
                with contextlib.suppress(psycopg.Error):
                    await conn.set_autocommit(False)


def _resolve(item: _Pending, result: tuple[bool, int]) -> None:
    if not item.future.done():  # its request may have been cancelled meanwhile
        item.future.set_result(result)
