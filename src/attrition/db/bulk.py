"""Writing many predictions with COPY: the same rows as :func:`attrition.db.writer.insert_many`.

:func:`~attrition.db.writer.insert_many` (and the statements that take the daily quota with
it) sends the records as one JSON document that PostgreSQL parses into a ``jsonb`` tree,
splits into elements and turns back into typed columns with ``jsonb_populate_record``, twice
per record: for a batch of 1,000 that is about half of the server's CPU for the write
(``bench/batch_inprocess.py --write copy``). COPY hands PostgreSQL the rows in its own text
format, written by psycopg (``Copy.write_row``: its escaping, its dumpers): each value goes
once through its column's input function, and only ``payload`` and ``explanation`` are
parsed as JSON.

:func:`copy_predictions` takes the identifiers first (one ``nextval`` per row of both
tables, and ``now()``, the transaction's time that ``received_at`` and ``created_at``
default to), then copies the inputs and the outputs. It must run inside a transaction (the
caller's), like ``insert_many``: both tables are written, or neither. Rows, defaults,
constraints, triggers (the sealing queue) and results are those of ``insert_many``
(``tests/db/test_bulk.py`` compares them column by column).
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import orjson
import psycopg

from attrition.data.vocabulary import FEATURE_NAMES
from attrition.db.audit import INPUT_COLUMNS, OUTPUT_COLUMNS, PredictionRecord, Written

# Fixed names from the vocabulary and audit.py; every value goes through COPY's data stream.
_IDS_SQL = (
    "SELECT nextval(s.inputs), nextval(s.outputs), now() FROM (SELECT "
    "pg_get_serial_sequence('prediction_inputs', 'id')::regclass AS inputs, "
    "pg_get_serial_sequence('predictions', 'id')::regclass AS outputs) AS s, "
    "generate_series(1, %s)"
)
COPY_INPUTS = f"COPY prediction_inputs (id, {', '.join(INPUT_COLUMNS)}) FROM STDIN"
COPY_OUTPUTS = f"COPY predictions (id, input_id, {', '.join(OUTPUT_COLUMNS)}) FROM STDIN"
#: The record's attributes in the column order of INPUT_COLUMNS and OUTPUT_COLUMNS (a column
#: added there must be added here: tests/db/test_bulk.py checks the two orders).
INPUT_SCALARS = INPUT_COLUMNS[:9]
OUTPUT_BEFORE = ("model_version_id", "probability", "label", "threshold", "risk_level")
OUTPUT_AFTER = ("latency_ms", "record_mac")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):  # NUMERIC read from the employees' tables
        return float(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def _json(value: Any) -> bytes:
    # As insert_many's records_json: numpy values as numbers, Decimal as a float.
    return orjson.dumps(value, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _text(value: Any) -> str:
    # A JSON column's value as text: COPY's text format carries it to the column's input
    # function, as a Jsonb wrapper would, without a Python dumper call per value (a third of
    # the rows' formatting).
    return _json(value).decode()


_input_scalars = operator.attrgetter(*INPUT_SCALARS)
_output_before = operator.attrgetter(*OUTPUT_BEFORE)
_output_after = operator.attrgetter(*OUTPUT_AFTER)


def input_row(source: Any) -> tuple[Any, ...]:
    """The values of an input row after its id, in the column order of :data:`COPY_INPUTS`.

    ``source`` is a :class:`PredictionRecord`, or any object with its input attributes (a
    request's input before the model has scored it: :mod:`attrition.services.batches`).
    Its ``payload_json``, when set, is the payload's JSON the record's MAC covers: sent as
    it is (``jsonb`` does not keep the keys' order, so the stored value is the same).
    """
    payload_json = getattr(source, "payload_json", None)
    return (
        *_input_scalars(source),
        *map(source.features.get, FEATURE_NAMES),
        _text(source.payload) if payload_json is None else payload_json.decode(),
    )


async def copy_predictions(
    conn: psycopg.AsyncConnection[Any], records: Sequence[PredictionRecord]
) -> list[Written]:
    """Write ``records`` with COPY, in the caller's transaction; results in the records' order."""

    async def scored() -> AsyncIterator[Sequence[PredictionRecord]]:
        yield records

    return await copy_streamed(conn, records, scored())


async def copy_streamed(
    conn: psycopg.AsyncConnection[Any],
    inputs: Sequence[Any],
    outputs: AsyncIterator[Sequence[PredictionRecord]],
    *,
    reserved: asyncio.Future[list[Written]] | None = None,
    outputs_sent: asyncio.Event | None = None,
    inputs_started: asyncio.Event | None = None,
) -> list[Written]:
    """:func:`copy_predictions`, the outputs copied chunk by chunk once the inputs are.

    ``inputs`` (see :func:`input_row`) are sent first; then the outputs, the records of the
    same rows in the same order, as ``outputs`` gives them: the COPY of the outputs starts as
    soon as the inputs are in, so that PostgreSQL checks the first outputs while the caller
    still signs the last ones. What each row will be once written is known as soon as the
    identifiers are reserved: ``reserved`` is given it then (it is what this returns).
    ``outputs_sent`` is set once the last output row is written, just before the COPY is
    closed, which happens before the caller can run again. ``inputs_started`` is set once
    the server takes the inputs' COPY, just before their rows are written, which happens
    before the caller can run again (unless the server's socket is full).
    """
    cur = await conn.execute(_IDS_SQL, (len(inputs),))
    ids = await cur.fetchall()
    written = [Written(prediction_id, input_id, at) for input_id, prediction_id, at in ids]
    if reserved is not None:
        reserved.set_result(written)
    async with conn.cursor() as copier:
        async with copier.copy(COPY_INPUTS) as copy:
            if inputs_started is not None:
                inputs_started.set()
            for source, (input_id, _, _) in zip(inputs, ids, strict=True):
                await copy.write_row((input_id, *input_row(source)))
        async with copier.copy(COPY_OUTPUTS) as copy:
            done = 0
            async for records in outputs:
                if done + len(records) > len(ids):  # pragma: no cover - a bug of the caller
                    raise ValueError(f"more outputs than the {len(ids)} inputs")
                for record, (input_id, prediction_id, _) in zip(
                    records, ids[done : done + len(records)], strict=True
                ):
                    await copy.write_row(
                        (
                            prediction_id,
                            input_id,
                            *_output_before(record),
                            (
                                _text(record.explanation)
                                if record.explanation_json is None
                                else record.explanation_json.decode()
                            ),
                            *_output_after(record),
                        )
                    )
                done += len(records)
            if done != len(ids):  # pragma: no cover - would be a bug of the caller
                raise ValueError(f"{done} outputs for {len(ids)} inputs")
            if outputs_sent is not None:
                outputs_sent.set()
    return written
