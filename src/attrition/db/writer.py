"""Group commit of the audit trail: the records of concurrent requests in one statement.

Writing each prediction in its own transaction costs, per request, a pooled connection, a
BEGIN, the INSERT and a COMMIT that waits for the WAL to reach the disk. Under load most of
that is overhead. :class:`GroupCommitWriter` queues the records of every request of the
process; a background task takes everything pending and writes it with ONE multi-row
statement (the records sent as one JSON document, typed on the server by the tables' row
types), in autocommit, so that the statement is its own transaction. Each request's future
is resolved only after that statement, and so its COMMIT, has returned: the response never
leaves before its record is durable (``synchronous_commit`` is left on).

There is no timer: while one write waits for PostgreSQL, the requests that arrive pile up
and go together in the next one, so a lone request is written at once and batches grow
with the load. Semantics are those of :func:`attrition.db.audit.insert_predictions`: one
input and one output per prediction, all in the same transaction, results in order. If a
group fails for a reason other than the database being unreachable (a constraint), each
request of the group is retried alone, so that one bad record fails only its own request.

A request may bring the take of its key's daily quota (:class:`attrition.db.usage.Take`): the
takes of the group are made by the same statement (:data:`INSERT_PAYING`), after its rows, so a
prediction and its count are committed together, and a request whose take is refused writes
nothing and gets :class:`attrition.db.usage.QuotaExceeded`.

A group of ``LARGE_GROUP`` records or more (a batch) is written by COPY instead
(:mod:`attrition.db.bulk`), its takes first, in one transaction: parsing a JSON document of
1,000 records cost PostgreSQL about twice the CPU.

Enabled by ``ATTRITION_DB__GROUP_COMMIT`` (see ``docs/performance.md`` for the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from attrition.db import bulk, usage
from attrition.db.affinity import BackendPlacement
from attrition.db.audit import PredictionRecord, Written
from attrition.db.chain import canonical
from attrition.db.pool import check_connection
from attrition.db.writer_sql import (
    CEILING_CHECK,
    INSERT_MANY,
    INSERT_ONE,
    INSERT_ONE_PAYING,
    INSERT_PAYING,
    INSERT_PAYING_ONE,
)

log = logging.getLogger(__name__)


#: From this many records, a group is written by COPY (:mod:`attrition.db.bulk`).
LARGE_GROUP = 500


def records_json(records: Sequence[PredictionRecord]) -> bytes:
    """The records as one JSON array of arrays (:mod:`attrition.db.writer_sql`): each is the
    array its MAC covers, kept by the service (or made here), followed by the MAC."""
    return b"[" + b",".join(_record_json(r) for r in records) + b"]"


def _record_json(record: PredictionRecord) -> bytes:
    signed = record.canonical if record.canonical is not None else canonical(record.mac_values())
    return signed[:-1] + b"," + orjson.dumps(record.record_mac) + b"]"


async def insert_many(
    conn: psycopg.AsyncConnection[Any], records: Sequence[PredictionRecord]
) -> list[Written]:
    """Write ``records`` with one statement; results in the records' order. Never commits."""
    # Jsonb with a dumps that returns orjson's bytes: no decode to str and re-encode by the
    # driver (3.5 MB for a batch of 1,000).
    cur = await conn.execute(INSERT_MANY, (Jsonb(records, dumps=records_json),))
    rows = await cur.fetchall()
    if len(rows) != len(records):  # pragma: no cover - would be a bug of the statement
        raise RuntimeError(f"{len(rows)} rows written for {len(records)} records")
    return [Written(*row) for row in rows]


@dataclass(frozen=True, slots=True)
class Committed:
    """What one request's write gave: its rows, and its key's count of the day after it."""

    written: list[Written]
    used: int | None = None  # None: the request took nothing (no quota to pay)


@dataclass(slots=True)
class _Pending:
    records: Sequence[PredictionRecord]
    take: usage.Take | None
    future: asyncio.Future[Committed]


#: What the write of a group gave one of its requests: committed, refused by its quota, or
#: (None) to be written again alone, because its key's takes together passed the ceiling.
_Result = Committed | usage.QuotaExceeded | None


@dataclass(slots=True)
class GroupCommitWriter:
    """One per API process: queues records, writes them in groups, answers after COMMIT.

    Small requests are written one group at a time: the requests that arrive while a group is
    being written wait for it and go together in the next, so that groups grow with the load.
    A second group in flight would only split them into smaller groups, each paying its own
    statement and commit, and waiting anyway for the same key's daily count (measured with
    two processes at concurrency 32: 4 to 6 % more predictions per second and 18 % less
    PostgreSQL CPU per prediction with one). A batch (``LARGE_GROUP`` records or more) has a
    turn of its own, so that single predictions never wait for a batch's COPY.

    The small groups are written on one connection the writer keeps (in autocommit), its
    backend kept on this worker's CPU when the worker is pinned (:mod:`attrition.db.affinity`),
    checked before each group as the pool checks the connections it lends: lending a connection,
    checking it and switching it to autocommit and back cost each group about a third of its
    own statement's client work. It is given back to the pool every ``keep_s`` seconds (so
    that the pool's ``max_lifetime`` still applies), when it breaks, and at close; a pool of
    one connection is never held. When the writer is idle, a request writes its group in its
    own task: going through the background task cost a task and two event-loop turns more
    per request at concurrency 1.

    Parameters
    ----------
    pool:
        The process's connection pool (as the application role).
    max_records:
        Most records in one statement; beyond, the next write takes the rest.
    keep_s:
        How long the connection of the small groups is kept before it goes back to the pool.
    """

    pool: AsyncConnectionPool[Any]
    max_records: int = 2000
    keep_s: float = 60.0
    _kept: psycopg.AsyncConnection[Any] | None = None
    _cursor: psycopg.AsyncCursor[Any] | None = None  # the kept connection's, kept with it
    _kept_since: float = 0.0
    _placement: BackendPlacement = field(default_factory=BackendPlacement)  # ADR 31
    _pending: deque[_Pending] = field(default_factory=deque)
    _batches: deque[_Pending] = field(default_factory=deque)
    _busy: set[str] = field(default_factory=set)  # the turns in use: "small", "batch"
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _flushes: set[asyncio.Task[None]] = field(default_factory=set)
    _task: asyncio.Task[None] | None = None
    _closing: bool = False

    async def start(self) -> None:
        """Start the background task."""
        self._task = asyncio.create_task(self._run(), name="attrition-group-commit")

    async def close(self) -> None:
        """Refuse new writes, finish the pending ones, stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        while self._busy:  # a group written by its own request's task
            await asyncio.sleep(0.01)
        await self._give_back()

    async def write(
        self, records: Sequence[PredictionRecord], take: usage.Take | None = None
    ) -> Committed:
        """Record ``records`` and ``take`` (one transaction); return once committed.

        Raises psycopg's error, or :class:`usage.QuotaExceeded` (nothing written) when the
        take would pass its ceiling. The takes of a key in one group are tried together;
        if together they pass the ceiling, its requests are written again one by one, in
        order, so that the ceiling is exact.
        """
        if self._closing or self._task is None or self._task.done():
            raise psycopg.OperationalError("the audit writer is stopped")
        future: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        if len(records) < LARGE_GROUP and not self._pending and "small" not in self._busy:
            # Idle: this request's group is written now, by its own task (the turn is taken
            # as the background task would take it; those arriving meanwhile wait for it).
            self._busy.add("small")
            try:
                await self._flush([_Pending(records, take, future)])
            finally:
                self._busy.discard("small")
                self._wakeup.set()
            return future.result()
        queue = self._batches if len(records) >= LARGE_GROUP else self._pending
        queue.append(_Pending(records, take, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        try:
            while not (self._closing and not self._pending and not self._batches):
                await self._wakeup.wait()
                self._wakeup.clear()
                if self._pending and "small" not in self._busy:
                    self._start("small", self._take())
                if self._batches and "batch" not in self._busy:
                    self._start("batch", [self._batches.popleft()])
        finally:
            stopped = psycopg.OperationalError("the audit writer is stopped")
            for item in (*self._pending, *self._batches):
                _fail(item, stopped)
            self._pending.clear()
            self._batches.clear()

    def _start(self, turn: str, group: list[_Pending]) -> None:
        self._busy.add(turn)
        task = asyncio.create_task(self._flush(group))
        self._flushes.add(task)
        task.add_done_callback(lambda done: self._finished(turn, done))

    def _finished(self, turn: str, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        self._busy.discard(turn)
        self._wakeup.set()  # the next group may go

    def _take(self) -> list[_Pending]:
        group: list[_Pending] = []
        count = 0
        while self._pending and (
            not group or count + len(self._pending[0].records) <= self.max_records
        ):
            item = self._pending.popleft()
            group.append(item)
            count += len(item.records)
        return group

    async def _flush(self, group: list[_Pending]) -> None:
        try:
            if _size(group) >= LARGE_GROUP:
                results = await self._write_copy(group)
            elif len(group) == 1 and len(group[0].records) == 1:
                results = [await self._write_one(group[0])]
            elif any(item.take is not None for item in group):
                results = await self._write_paying(group)
            else:
                written = await self._write(
                    INSERT_MANY, (Jsonb(_records(group), dumps=records_json),)
                )
                results = _split(group, [Written(*row) for row in written])
        except (psycopg.OperationalError, PoolTimeout) as exc:
            for item in group:
                _fail(item, exc)
            return
        except psycopg.Error as exc:
            if len(group) == 1:
                _fail(group[0], exc)
                return
            log.warning(
                "écriture groupée en échec (%s) : chaque requête est réessayée seule",
                type(exc).__name__,
            )
            for item in group:
                await self._flush([item])
            return
        except BaseException as exc:  # cancelled at shutdown, or a bug: never leave a waiter
            for item in group:
                _fail(item, psycopg.OperationalError(f"audit writer: {type(exc).__name__}"))
            raise
        again = []
        for item, result in zip(group, results, strict=True):
            if result is None:
                again.append(item)
            elif isinstance(result, usage.QuotaExceeded):
                _fail(item, result)
            elif not item.future.done():
                item.future.set_result(result)
        for item in again:  # in order, each alone: the ceiling is exact
            await self._flush([item])

    async def _write_paying(self, group: list[_Pending]) -> list[_Result]:
        """Write the group, then its takes, in one statement (:data:`INSERT_PAYING`).

        A take over its ceiling aborts the statement (nothing written): alone, its request is
        refused; in a group, every request is written again alone, in order, so that the
        ceiling is exact.
        """
        takes = _Takes.of(group)
        merged = takes.merged()
        records = Jsonb(_records(group), dumps=records_json)
        try:
            if len(merged) == 1:
                params = {**usage.params(merged[0][1]), "records": records}
                rows = await self._write(INSERT_PAYING_ONE, params)
            else:
                params = {"takes": Jsonb(merged, dumps=usage.takes_json), "records": records}
                rows = await self._write(INSERT_PAYING, params)
        except psycopg.errors.CheckViolation as exc:
            if exc.diag.constraint_name != CEILING_CHECK:
                raise
            if len(group) > 1:
                return [None] * len(group)
            assert group[0].take is not None  # a group pays only if one of its requests does
            return [usage.QuotaExceeded(await self._used(group[0].take))]
        by_place = {int(r[1]): Written(r[2], r[3], r[4]) for r in rows if r[0] == 0}
        taken = {int(r[1]): (True, int(r[5])) for r in rows if r[0] == 1}
        written: list[list[Written] | None] = []
        start = 0
        for item in group:
            first, start = start + 1, start + len(item.records)
            written.append([by_place[n] for n in range(first, start + 1)])
        return takes.results(group, taken, written)

    async def _write_one(self, item: _Pending) -> _Result:
        """A lone request of one record: :data:`INSERT_ONE`, or :data:`INSERT_ONE_PAYING`."""
        record = Jsonb(item.records[0], dumps=_record_json)
        if item.take is None:
            rows = await self._write(INSERT_ONE, {"record": record})
        else:
            try:
                rows = await self._write(
                    INSERT_ONE_PAYING, {**usage.params(item.take), "record": record}
                )
            except psycopg.errors.CheckViolation as exc:
                if exc.diag.constraint_name != CEILING_CHECK:
                    raise
                return usage.QuotaExceeded(await self._used(item.take))
        prediction_id, input_id, created_at, used = rows[0]
        written = [Written(prediction_id, input_id, created_at)]
        return Committed(written) if used is None else Committed(written, int(used))

    async def _used(self, take: usage.Take) -> int:
        """A key's count as it is (for the refusal of a take over its ceiling)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(usage.READ, usage.params(take))
            row = await cur.fetchone()
        return 0 if row is None else int(row[0])

    async def _write_copy(self, group: list[_Pending]) -> list[_Result]:
        """A large group: its takes, then its records by COPY (:mod:`attrition.db.bulk`).

        One transaction, a few round trips: for a batch of 1,000, COPY costs PostgreSQL about
        half the CPU of parsing the records' JSON document (``bench/batch_inprocess.py``).
        """
        takes = _Takes.of(group)
        taken: dict[int, tuple[bool, int]] = {}
        async with self.pool.connection() as conn, conn.transaction():
            for idx, take in takes.merged():
                try:
                    taken[idx] = (True, await usage.take(conn, take))
                except usage.QuotaExceeded as exc:
                    taken[idx] = (False, exc.used)
            paid = [
                item for item in group if item.take is None or taken[takes.index[item.take.row]][0]
            ]
            rows = iter(await bulk.copy_predictions(conn, _records(paid)) if paid else [])
        written = [
            [next(rows) for _ in item.records]
            if item.take is None or taken[takes.index[item.take.row]][0]
            else None
            for item in group
        ]
        return takes.results(group, taken, written)

    async def _write(self, statement: str, params: Any) -> list[tuple[Any, ...]]:
        # One statement in autocommit is one transaction: a single round trip, and the
        # server answers only once the COMMIT is durable.
        if self.pool.max_size < 2:  # no connection to spare: one lent per group
            async with self.pool.connection() as lent:
                await lent.set_autocommit(True)
                try:
                    cur = await lent.execute(statement, params)
                    return await cur.fetchall()
                finally:
                    with contextlib.suppress(psycopg.Error):  # a broken one is discarded
                        await lent.set_autocommit(False)
        cur = await self._connection()
        try:
            await cur.execute(statement, params)
            return await cur.fetchall()
        except psycopg.OperationalError:
            await self._give_back()
            raise

    async def _connection(self) -> psycopg.AsyncCursor[Any]:
        """The kept connection's cursor if it is still good, else a new one's from the pool
        (a cursor made and closed per group cost a lone statement about 10 µs of CPU)."""
        conn, cur = self._kept, self._cursor
        if conn is not None:
            if cur is not None and time.monotonic() - self._kept_since < self.keep_s:
                try:
                    await check_connection(conn)  # as the pool does before lending
                    self._placement.follow(conn)
                    return cur
                except psycopg.Error:
                    pass
            await self._give_back()
        conn = await self.pool.getconn()
        try:
            await conn.set_autocommit(True)
        except BaseException:
            await self.pool.putconn(conn)
            raise
        self._kept, self._kept_since, self._cursor = conn, time.monotonic(), conn.cursor()
        self._placement.follow(conn)
        return self._cursor

    async def _give_back(self) -> None:
        conn, self._kept, self._cursor = self._kept, None, None
        self._placement.release()
        if conn is None:
            return
        with contextlib.suppress(psycopg.Error):  # as the pool's other users expect it
            await conn.set_autocommit(False)
        await self.pool.putconn(conn)  # a broken or busy one is discarded by the pool


@dataclass(slots=True)
class _Takes:
    """The takes of a group: one per counter row (numbered ``idx``), merged."""

    by_row: dict[tuple[str, str, int], list[usage.Take]]
    index: dict[tuple[str, str, int], int]

    @classmethod
    def of(cls, group: list[_Pending]) -> _Takes:
        by_row: dict[tuple[str, str, int], list[usage.Take]] = {}
        for item in group:
            if item.take is not None:
                by_row.setdefault(item.take.row, []).append(item.take)
        return cls(by_row, {row: idx for idx, row in enumerate(by_row)})

    def merged(self) -> list[tuple[int, usage.Take]]:
        return [(idx, usage.merged(self.by_row[row])) for row, idx in self.index.items()]

    def results(
        self,
        group: list[_Pending],
        taken: dict[int, tuple[bool, int]],
        written: list[list[Written] | None],
    ) -> list[_Result]:
        """Each request's result, given each take's (taken, count) and each request's rows.

        A refused take fails its request, or, when its key had several requests in the
        group, sends each of them to be written again alone (None).
        """
        merged = dict(self.merged())
        # A key's count after each of its requests, in the group's order.
        counts = {idx: used - merged[idx].amount for idx, (ok, used) in taken.items() if ok}
        results: list[_Result] = []
        for item, rows in zip(group, written, strict=True):
            if item.take is None:
                assert rows is not None
                results.append(Committed(rows))
                continue
            idx = self.index[item.take.row]
            ok, used = taken[idx]
            if ok and rows is not None:
                counts[idx] += item.take.amount
                results.append(Committed(rows, counts[idx]))
            elif len(self.by_row[item.take.row]) > 1:
                results.append(None)
            else:
                results.append(usage.QuotaExceeded(used))
        return results


def _records(group: list[_Pending]) -> list[PredictionRecord]:
    return [r for item in group for r in item.records]


def _size(group: list[_Pending]) -> int:
    return sum(len(item.records) for item in group)


def _split(group: list[_Pending], written: list[Written]) -> list[_Result]:
    if len(written) != _size(group):  # pragma: no cover - would be a bug of the statement
        raise RuntimeError(f"{len(written)} rows written for {_size(group)} records")
    results: list[_Result] = []
    start = 0
    for item in group:
        end = start + len(item.records)
        results.append(Committed(written[start:end]))
        start = end
    return results


def _fail(item: _Pending, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)
