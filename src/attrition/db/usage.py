"""Usage counters per key and UTC day, in PostgreSQL: the daily quotas of every replica.

One row per (counter, key, day), taken by an atomic upsert that adds only while the sum stays
within the ceiling (``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING``): two
replicas, or two workers, racing on one key serialise on the row and never pass the ceiling
together.

The take is made **in the transaction that records the predictions it pays for**, never in
one of its own: the prediction and its count are committed together or not at all. A request
refused by the database (an unknown employee, a constraint) spends nothing; a replayed
idempotent request, which records nothing, takes nothing; and a prediction costs one round
trip to PostgreSQL, not two. The group-commit writer (:mod:`attrition.db.writer`) takes the
counts of a whole group in its one statement (:data:`TAKES_CTE`); the one-transaction path
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


TAKE = (
    "INSERT INTO usage_counters AS u (counter, key, day, used) "
    "VALUES (%(counter)s, %(key)s, %(day)s, %(amount)s) "
    "ON CONFLICT (counter, key, day) DO UPDATE SET used = u.used + excluded.used "
    "WHERE u.used + excluded.used <= %(ceiling)s "
    "RETURNING used"
)
READ = (
    "SELECT used FROM usage_counters "
    "WHERE counter = %(counter)s AND key = %(key)s AND day = %(day)s"
)

#: One take (every request of a group from one key), as the common table expression ``q``:
#: the cheap case, the general one below costs PostgreSQL about twice as much.
TAKE_CTE = (
    "q AS (INSERT INTO usage_counters AS u (counter, key, day, used) "
    "SELECT %(counter)s, %(key)s, %(day)s, %(amount)s WHERE %(amount)s <= %(ceiling)s "
    "ON CONFLICT (counter, key, day) DO UPDATE SET used = u.used + excluded.used "
    "WHERE u.used + excluded.used <= %(ceiling)s RETURNING used)"
)
#: The count after the statement of :data:`TAKE_CTE`'s take (``idx`` 0): taken or as it was.
TAKE_RESULT = (
    "SELECT 0 AS idx, true AS ok, used FROM q UNION ALL "
    "SELECT 0, false, coalesce((SELECT used FROM usage_counters WHERE counter = %(counter)s "
    "AND key = %(key)s AND day = %(day)s), 0) WHERE NOT EXISTS (SELECT FROM q)"
)

#: The takes of a group, as common table expressions ``t`` (one row per counter row, numbered
#: ``idx``) and ``q`` (the rows added to). A row whose sum would pass its ceiling is left as
#: it is and absent from ``q``; the statement that uses these decides what it then skips.
TAKES_CTE = (
    "t AS (SELECT * FROM jsonb_to_recordset(%(takes)s::jsonb) "
    "AS t(idx int, counter text, key text, day date, amount int, ceiling int)), "
    "q AS (INSERT INTO usage_counters AS u (counter, key, day, used) "
    "SELECT counter, key, day, amount FROM t WHERE amount <= ceiling "
    "ON CONFLICT (counter, key, day) DO UPDATE SET used = u.used + excluded.used "
    "WHERE u.used + excluded.used <= (SELECT t.ceiling FROM t WHERE t.counter = excluded.counter "
    "AND t.key = excluded.key AND t.day = excluded.day) "
    "RETURNING counter, key, day, used), "
    "taken AS (SELECT t.idx, q.used FROM t JOIN q USING (counter, key, day))"
)
#: The count of each row of ``t`` after the statement: taken (``ok``) or as it was.
TAKES_RESULT = (
    "SELECT t.idx, taken.used IS NOT NULL AS ok, coalesce(taken.used, c.used, 0) AS used "
    "FROM t LEFT JOIN taken USING (idx) "
    "LEFT JOIN usage_counters c USING (counter, key, day)"
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
    """The ``takes`` parameter of :data:`TAKES_CTE`: (idx, take) pairs, one per counter row."""
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
