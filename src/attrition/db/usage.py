"""Usage counters per key and UTC day, in PostgreSQL: the daily quotas of every replica.

One row per (counter, key, day), taken by an atomic upsert that adds only while the sum stays
within the ceiling (``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING``), and that the
table itself refuses past the ceiling it records (check ``within_ceiling``): two replicas, or
two workers, racing on one key serialise on the row and never pass the ceiling together.

The take is made **in the transaction that records the predictions it pays for**, never in
one of its own: the prediction and its count are committed together or not at all. A request
refused by the database (an unknown employee, a constraint) spends nothing; a replayed
idempotent request, which records nothing, takes nothing; and a prediction costs one round
trip to PostgreSQL, not two. The group-commit writer (:mod:`attrition.db.writer`) takes the
counts of a whole group in its one statement, after its rows (``INSERT_PAYING``); the
one-transaction path
calls :func:`take` before its INSERT. The table is
:class:`attrition.db.usage_models.UsageCounter`; this module stays free of SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson
import psycopg

_EPOCH = date(1970, 1, 1)


def day_of(day_number: int) -> date:
    """The UTC date of a day counted from the Unix epoch."""
    return _EPOCH + timedelta(days=day_number)


@dataclass(frozen=True, slots=True)
class Take:
    """``amount`` to add to a key's count of the day, refused if that passes ``ceiling``."""

    counter: str
    key: str
    day: int
    amount: int
    ceiling: int

    @property
    def row(self) -> tuple[str, str, int]:
        """The counter row this take adds to."""
        return self.counter, self.key, self.day


class QuotaExceeded(Exception):
    """The take would pass the ceiling: nothing was recorded. ``used``: the count as it is."""

    def __init__(self, used: int) -> None:
        super().__init__(f"quota exceeded ({used} used)")
        self.used = used


#: A take in the caller's transaction; no row returned: refused. It records the ceiling the
#: count was taken under (the ``within_ceiling`` check of the table, migration 0014).
TAKE = (
    "INSERT INTO usage_counters AS u (counter, key, day, used, ceiling) "
    "VALUES (%(counter)s, %(key)s, %(day)s, %(amount)s, %(ceiling)s) "
    "ON CONFLICT (counter, key, day) DO UPDATE "
    "SET used = u.used + excluded.used, ceiling = excluded.ceiling "
    "WHERE u.used + excluded.used <= excluded.ceiling "
    "RETURNING used"
)
READ = (
    "SELECT used FROM usage_counters "
    "WHERE counter = %(counter)s AND key = %(key)s AND day = %(day)s"
)


def params(take: Take) -> dict[str, Any]:
    return {
        "counter": take.counter,
        "key": take.key,
        "day": day_of(take.day),
        "amount": take.amount,
        "ceiling": take.ceiling,
    }


async def take(conn: psycopg.AsyncConnection[Any], wanted: Take) -> int:
    """Take ``wanted`` in the caller's transaction; the count after, or QuotaExceeded."""
    values = params(wanted)
    if wanted.amount <= wanted.ceiling:  # else a first insert would pass the ceiling at once
        cur = await conn.execute(TAKE, values)
        row = await cur.fetchone()
        if row is not None:
            return int(row[0])
    cur = await conn.execute(READ, values)
    row = await cur.fetchone()
    raise QuotaExceeded(0 if row is None else int(row[0]))


def takes_json(takes: Iterable[tuple[int, Take]]) -> bytes:
    """The ``takes`` parameter of ``writer_sql.INSERT_PAYING``: (idx, take) pairs, one per row."""
    return orjson.dumps(
        [{**params(take), "idx": idx, "day": day_of(take.day).isoformat()} for idx, take in takes]
    )


def merged(takes: Sequence[Take]) -> Take:
    """One take for several of the same counter row: their sum, under the lowest ceiling."""
    first = takes[0]
    return Take(
        first.counter,
        first.key,
        first.day,
        sum(t.amount for t in takes),
        min(t.ceiling for t in takes),
    )
