"""Usage counters per key and UTC day, in PostgreSQL: the daily quotas of every replica.

One row per (counter, key, day), taken by ONE atomic upsert that adds only while the sum
stays within the ceiling (``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING``): two
replicas, or two workers, racing on one key serialise on the row and never pass the ceiling
together. The statement is its own transaction, committed asynchronously
(``synchronous_commit`` off for it alone): a quota count needs no fsync of its own, and a
crash of PostgreSQL may forget at most the last fraction of a second of counts (a few
predictions more for a key that day), never a recorded prediction.
"""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import BigInteger, CheckConstraint, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from attrition.db.base import Base

_EPOCH = date(1970, 1, 1)


class UsageCounter(Base):
    """How much of a daily quota a key has used (``counter`` names the quota)."""

    __tablename__ = "usage_counters"
    __table_args__ = (CheckConstraint("used >= 0", name="used_not_negative"),)

    counter: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger)


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
            row = None
            if amount <= ceiling:  # else a first insert would pass the ceiling at once
                cur = await conn.execute(TAKE, {**params, "ceiling": ceiling})
                row = await cur.fetchone()
            if row is not None:
                return True, int(row[0])
            return False, await _read(conn, params)
        finally:
            with contextlib.suppress(psycopg.Error):  # a broken connection is discarded
                await conn.set_autocommit(False)


async def _read(conn: psycopg.AsyncConnection[Any], params: dict[str, Any]) -> int:
    cur = await conn.execute(READ, params)
    row = await cur.fetchone()
    return 0 if row is None else int(row[0])
