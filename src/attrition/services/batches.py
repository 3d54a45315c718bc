"""A large request: scored while PostgreSQL writes its inputs, in the caller's transaction.

For a batch of 1,000 employees the write by COPY (:mod:`attrition.db.bulk`) kept PostgreSQL
busy about 29 ms, a third of it reserving identifiers and most of the rest at the end of
each COPY (the foreign-key checks of every row), while the process waited; scoring and
signing the records kept the process busy about 19 ms while PostgreSQL waited. The inputs
do not depend on the model: here a task reserves the identifiers and copies the inputs
while the request's own task runs the model over every row at once; the inputs' rows are
on their way before the first row is explained; the rows are then explained and signed in
chunks, giving the loop back between chunks, so that both cores work at once. Each signed
chunk goes to the task, which copies the outputs as soon as the inputs are in: PostgreSQL
checks the first outputs (about 22 µs a row, the longest part of the write) while the last
rows are signed, and the answer is rendered while it checks the last
ones (docs/decisions.md, ADR 21 and 25).

It is still one transaction, the caller's: a failure of the model at any chunk, or of the
database, leaves nothing written (the task is always awaited before the transaction ends).
The rows are those :func:`attrition.db.bulk.copy_predictions` writes, and each record is
signed as the service signs any record (``tests/services/test_batches.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from attrition.db import bulk, chain
from attrition.db.audit import PredictionRecord, Written

#: Employees scored between two turns of the event loop: between them, the task sends the
#: inputs PostgreSQL has taken since (the socket's buffer holds about a third of a batch's).
CHUNK = 100

#: ``sign(first, end, batch_id)``: the signed records of the request's rows ``first`` to
#: ``end`` (explanations built, MACs computed), once the model has scored every row.
Sign = Callable[[int, int, str], list[PredictionRecord]]
#: ``prepare(inputs)``: the model's vectorised pass over every row (:class:`PendingInput`,
#: the request's items and their payloads' JSON); gives their ``sign`` (the service's
#: scoring, :meth:`PredictionService._preparer`).
Prepare = Callable[[Sequence[Any]], Sign]


@dataclass(frozen=True, slots=True)
class PendingInput:
    """One input row as :func:`attrition.db.bulk.input_row` reads it, before the model runs."""

    request_id: str
    client_request_id: str | None
    api_key_id: int | None
    source: str
    id_employee: int | None
    batch_id: str
    batch_row: int
    idempotency_key: str | None
    request_hash: str | None
    features: dict[str, Any]
    payload: dict[str, Any]
    payload_json: bytes
    """The payload as its record's MAC covers it (:func:`attrition.db.chain.json_of`): the
    COPY of the inputs and the signature of the outputs use these bytes, made once."""


@dataclass(frozen=True, slots=True)
class Scored:
    """The request's signed records, and what each will be once written."""

    records: list[PredictionRecord]
    written: list[Written]


@contextlib.asynccontextmanager
async def score_and_copy(
    conn: psycopg.AsyncConnection[Any], items: Sequence[Any], ctx: Any, prepare: Prepare
) -> AsyncIterator[Scored]:
    """Score ``items`` (:class:`ScoreItem`) and write them, inputs first; never commits.

    The block runs while PostgreSQL checks the outputs (the answer can be rendered there);
    leaving it waits for the end of the write, and raises its error.
    """
    batch_id = str(uuid.uuid4())
    inputs = [
        PendingInput(
            ctx.request_id,
            ctx.client_request_id,
            ctx.api_key_id,
            ctx.source,
            item.id_employee,
            batch_id,
            ctx.first_row + index,
            ctx.idempotency_key,
            ctx.request_hash,
            item.features,
            item.payload,
            chain.json_of(item.payload),
        )
        for index, item in enumerate(items)
    ]
    loop = asyncio.get_running_loop()
    signed = _Chunks()
    reserved: asyncio.Future[list[Written]] = loop.create_future()
    outputs_sent, inputs_started = asyncio.Event(), asyncio.Event()
    writing = asyncio.create_task(
        bulk.copy_streamed(
            conn,
            inputs,
            signed.stream(),
            reserved=reserved,
            outputs_sent=outputs_sent,
            inputs_started=inputs_started,
        )
    )
    try:
        await asyncio.sleep(0)  # the task sends the query that reserves the identifiers
        sign = prepare(inputs)  # the model, for every row at once, meanwhile
        # The inputs go before the first row is signed: PostgreSQL writes them while the
        # rows are explained and signed. Sent after the first chunks, they kept the server
        # busy after the last row was signed (about 5 ms of a batch of 1,000).
        await _either(inputs_started, writing)
        records: list[PredictionRecord] = []
        for first in range(0, len(items), CHUNK):
            await _let_run()
            if writing.done():
                break  # the write failed: its error is raised below
            chunk = sign(first, min(first + CHUNK, len(items)), batch_id)
            records += chunk
            signed.put(chunk)  # copied as soon as the inputs are in
        signed.end()
        await _either(outputs_sent, writing)
        if writing.done():
            writing.result()  # its error, if it failed
        yielded = Scored(records, reserved.result())
    except BaseException:
        await _stop(signed, writing)
        raise
    try:
        yield yielded
    except BaseException:
        await _stop(signed, writing)
        raise
    await writing


class _Abandoned(Exception):
    """The request failed before its last chunk: the COPY of the outputs is abandoned."""


class _Chunks:
    """The signed chunks, from the request's task to the task that copies them."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Sequence[PredictionRecord] | BaseException | None] = (
            asyncio.Queue()
        )
        self.closed = False

    def put(self, chunk: Sequence[PredictionRecord]) -> None:
        self._queue.put_nowait(chunk)

    def end(self) -> None:
        self.closed = True
        self._queue.put_nowait(None)

    def abandon(self) -> None:
        """Make the copy fail (PostgreSQL is told, the transaction rolls back), unless ended."""
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(_Abandoned())

    async def stream(self) -> AsyncIterator[Sequence[PredictionRecord]]:
        while (chunk := await self._queue.get()) is not None:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk


async def _let_run() -> None:
    """Give the event loop's other tasks their turn, those woken by a socket included.

    One turn is not enough: a task whose socket became ready while this one worked is woken
    in the loop's next pass, after this one, so it would run only after the next chunk. The
    third turn is the first in which it comes first.
    """
    for _ in range(3):
        await asyncio.sleep(0)


async def _stop(signed: _Chunks, writing: asyncio.Task[Any]) -> None:
    """Stop the write before its last output, or let it end: it never outlives the
    transaction."""
    signed.abandon()
    await asyncio.wait({writing})
    with contextlib.suppress(BaseException):
        writing.result()


async def _either(event: asyncio.Event, task: asyncio.Task[Any]) -> None:
    """Wait for ``event``, or for ``task`` to end first (it failed before setting it)."""
    if event.is_set() or task.done():
        return
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
