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

Enabled by ``ATTRITION_DB__GROUP_COMMIT`` (see ``docs/performance.md`` for the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from attrition.db.audit import INPUT_COLUMNS as _INPUTS
from attrition.db.audit import OUTPUT_COLUMNS as _OUTPUTS
from attrition.db.audit import PredictionRecord, Written

log = logging.getLogger(__name__)

# Column names come from this module, never from a request; the data is one JSON parameter,
# typed by the tables' own row types (jsonb_populate_record), so that PostgreSQL parses it in
# C instead of the driver adapting thousands of values in Python.
INSERT_MANY = (
    "WITH e AS MATERIALIZED (SELECT "  # noqa: S608
    "nextval(pg_get_serial_sequence('prediction_inputs', 'id')) AS input_id, e.rec, e.ord "
    "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(rec, ord)), "
    f"i AS (INSERT INTO prediction_inputs (id, {', '.join(_INPUTS)}) "
    f"SELECT e.input_id, {', '.join(f'r.{c}' for c in _INPUTS)} "
    "FROM e, jsonb_populate_record(NULL::prediction_inputs, e.rec) AS r), "
    f"p AS (INSERT INTO predictions (input_id, {', '.join(_OUTPUTS)}) "
    f"SELECT e.input_id, {', '.join(f'r.{c}' for c in _OUTPUTS)} "
    "FROM e, jsonb_populate_record(NULL::predictions, e.rec) AS r "
    "RETURNING id, input_id, created_at) "
    "SELECT p.id, p.input_id, p.created_at FROM p JOIN e USING (input_id) ORDER BY e.ord"
)


#: From this many records, a write raises ``work_mem`` for its transaction (see ``_write``).
LARGE_GROUP = 500
LARGE_GROUP_WORK_MEM = "SET LOCAL work_mem = '64MB'"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):  # NUMERIC read from the employees' tables
        return float(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def records_json(records: Sequence[PredictionRecord]) -> bytes:
    """The records as one JSON array of objects keyed by column name (inputs and outputs)."""
    rows = [
        {
            **record.features,
            "request_id": record.request_id,
            "client_request_id": record.client_request_id,
            "api_key_id": record.api_key_id,
            "source": record.source,
            "id_employee": record.id_employee,
            "batch_id": record.batch_id,
            "batch_row": record.batch_row,
            "idempotency_key": record.idempotency_key,
            "request_hash": record.request_hash,
            "payload": record.payload,
            "model_version_id": record.model_version_id,
            "probability": record.probability,
            "label": record.label,
            "threshold": record.threshold,
            "risk_level": record.risk_level,
            "explanation": record.explanation,
            "latency_ms": record.latency_ms,
            "record_mac": record.record_mac,
        }
        for record in records
    ]
    return orjson.dumps(rows, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


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


@dataclass(slots=True)
class _Pending:
    records: Sequence[PredictionRecord]
    future: asyncio.Future[list[Written]]


@dataclass(slots=True)
class GroupCommitWriter:
    """One per API process: queues records, writes them in groups, answers after COMMIT.

    Parameters
    ----------
    pool:
        The process's connection pool (as the application role).
    max_records:
        Most records in one statement; beyond, the next write takes the rest.
    max_inflight:
        Writes that may wait for PostgreSQL at the same time (connections used).
    """

    pool: AsyncConnectionPool[Any]
    max_records: int = 2000
    max_inflight: int = 2
    _pending: deque[_Pending] = field(default_factory=deque)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _slots: asyncio.Semaphore | None = None
    _flushes: set[asyncio.Task[None]] = field(default_factory=set)
    _task: asyncio.Task[None] | None = None
    _closing: bool = False

    async def start(self) -> None:
        """Start the background task."""
        self._slots = asyncio.Semaphore(self.max_inflight)
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

    async def write(self, records: Sequence[PredictionRecord]) -> list[Written]:
        """Record ``records``; return once they are committed (or raise psycopg's error)."""
        if self._closing or self._task is None or self._task.done():
            raise psycopg.OperationalError("the audit writer is stopped")
        future: asyncio.Future[list[Written]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(records, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        assert self._slots is not None
        try:
            while not (self._closing and not self._pending):
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._pending:
                    await self._slots.acquire()
                    group = self._take()
                    task = asyncio.create_task(self._flush(group))
                    self._flushes.add(task)
                    task.add_done_callback(self._done)
        finally:
            stopped = psycopg.OperationalError("the audit writer is stopped")
            for item in self._pending:
                _fail(item, stopped)
            self._pending.clear()

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

    def _done(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        assert self._slots is not None
        self._slots.release()

    async def _flush(self, group: list[_Pending]) -> None:
        records = [r for item in group for r in item.records]
        try:
            written = await self._write(records)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            for item in group:
                _fail(item, exc)
            return
        except psycopg.Error as exc:
            if len(group) == 1:
                _fail(group[0], exc)
                return
            log.warning("group write failed (%s): retrying each request", type(exc).__name__)
            for item in group:
                await self._flush([item])
            return
        except BaseException as exc:  # cancelled at shutdown, or a bug: never leave a waiter
            for item in group:
                _fail(item, psycopg.OperationalError(f"audit writer: {type(exc).__name__}"))
            raise
        start = 0
        for item in group:
            end = start + len(item.records)
            if not item.future.done():
                item.future.set_result(written[start:end])
            start = end

    async def _write(self, records: list[PredictionRecord]) -> list[Written]:
        async with self.pool.connection() as conn:
            # One statement in autocommit is one transaction: a single round trip, and the
            # server answers only once the COMMIT is durable.
            await conn.set_autocommit(True)
            try:
                if len(records) < LARGE_GROUP:
                    return await insert_many(conn, records)
                # A large group's JSON (~3.5 kB a record) outgrows the default work_mem
                # (4 MB) in the materialised CTE, which then spills to a temporary file:
                # raise it for this transaction only (measured: -6 to -9 ms on 1,000).
                async with conn.transaction():
                    await conn.execute(LARGE_GROUP_WORK_MEM)
                    return await insert_many(conn, records)
            finally:
                with contextlib.suppress(psycopg.Error):  # a broken connection is discarded
                    await conn.set_autocommit(False)


def _fail(item: _Pending, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)
