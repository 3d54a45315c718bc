"""Writing many predictions with COPY: the same rows as :func:`attrition.db.writer.insert_many`.

:func:`~attrition.db.writer.insert_many` sends the records as one JSON document that
PostgreSQL parses into a ``jsonb`` tree, splits into elements and turns back into typed
columns with ``jsonb_populate_record``, twice per record: for a batch of 1,000 that is about
two thirds of the statement's server time (``bench/batch_write.py``), the INSERT itself the
rest. COPY hands PostgreSQL the rows in its own text format: each value goes once through its
column's input function, and only ``payload`` and ``explanation`` are parsed as JSON.

:func:`copy_predictions` takes the identifiers first (one ``nextval`` per row of both
tables, and ``now()``, the transaction's time that ``received_at`` and ``created_at``
default to), then copies the inputs and the outputs. It must run inside a transaction (the
caller's), like ``insert_many``: both tables are written, or neither. Rows, defaults,
constraints, triggers (the sealing queue) and results are those of ``insert_many``; the
test ``tests/db/test_bulk.py`` checks it column by column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from itertools import repeat
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
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
NULL = "\\N"
# The record's attributes, in the column order of INPUT_COLUMNS and OUTPUT_COLUMNS (a column
# added there must be added here: tests/db/test_bulk.py checks the two orders).
INPUT_SCALARS = INPUT_COLUMNS[:9]
OUTPUT_BEFORE = ("model_version_id", "probability", "label", "threshold", "risk_level")
OUTPUT_AFTER = ("latency_ms", "record_mac")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):  # NUMERIC read from the employees' tables
        return float(value)
    raise TypeError(f"not serialisable: {type(value).__name__}")


def _escape(text: str) -> str:
    # COPY's text format: backslash, and the delimiter and line ends it would read as such.
    # Returns ``text`` itself when there is nothing to escape.
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def _json(value: Any) -> bytes:
    # A JSON text holds no raw tab or line end (they are escaped): only backslashes to double.
    return orjson.dumps(value, default=_default, option=_JSON_OPTIONS).replace(b"\\", b"\\\\")


def _float(value: float) -> str:
    # What insert_many's JSON says for the same value: orjson writes a non-finite float as null.
    return repr(value) if math.isfinite(value) else NULL


def _other(value: Any) -> str:
    # numpy scalars, Decimal...: the number as JSON writes it (what insert_many sends).
    if value is None:
        return NULL
    return _json(value).decode()


def _bool(value: bool) -> str:
    return "t" if value else "f"


def _null(_: None) -> str:
    return NULL


_TEXT: dict[type, Callable[[Any], str]] = {
    str: _escape,
    int: int.__repr__,
    float: _float,
    bool: _bool,
    type(None): _null,
    dict: _other,
    list: _other,
}


def _text(value: Any) -> str:
    return _TEXT.get(type(value), _other)(value)


def _column(values: list[Any]) -> Iterable[str]:
    """One column's COPY text; a column of one type is converted in one ``map``."""
    kinds = set(map(type, values))
    if len(kinds) == 1:
        (kind,) = kinds
        if values.count(values[0]) == len(values):
            # One value for the whole column (the request's ids, the threshold, the latency):
            # converted once. (One type only: True == 1 must not pass for the same value.)
            return repeat(_text(values[0]), len(values))
        if kind is int:
            return map(int.__repr__, values)
        if kind is float and all(map(math.isfinite, values)):
            return map(float.__repr__, values)
        if kind is str and _escape(joined := "".join(values)) is joined:
            return values  # nothing to escape in the whole column
        return map(_TEXT.get(kind, _other), values)
    return map(_text, values)


def copy_rows(
    records: Sequence[PredictionRecord], ids: Sequence[tuple[int, int]]
) -> tuple[bytes, bytes]:
    """The COPY data of the inputs and of the outputs; ``ids`` = (input id, prediction id).

    Built column by column (a batch's column has one type, converted by one ``map``), then
    joined row by row; the JSON columns stay the bytes orjson wrote.
    """
    if len(records) != len(ids):
        raise ValueError(f"{len(ids)} ids for {len(records)} records")
    input_ids = [str(i) for i, _ in ids]
    features = [r.features for r in records]
    scalars = zip(
        input_ids,
        *(_column([getattr(r, name) for r in records]) for name in INPUT_SCALARS),
        *(_column([f.get(name) for f in features]) for name in FEATURE_NAMES),
        strict=True,
    )
    inputs = [
        b"%s\t%s" % ("\t".join(row).encode(), _json(r.payload))
        for row, r in zip(scalars, records, strict=True)
    ]
    before = zip(
        [str(p) for _, p in ids],
        input_ids,
        *(_column([getattr(r, name) for r in records]) for name in OUTPUT_BEFORE),
        strict=True,
    )
    after = zip(
        *(_column([getattr(r, name) for r in records]) for name in OUTPUT_AFTER), strict=True
    )
    outputs = [
        b"%s\t%s\t%s" % ("\t".join(b).encode(), _json(r.explanation), "\t".join(a).encode())
        for b, r, a in zip(before, records, after, strict=True)
    ]
    return b"\n".join(inputs) + b"\n", b"\n".join(outputs) + b"\n"


async def copy_predictions(
    conn: psycopg.AsyncConnection[Any], records: Sequence[PredictionRecord]
) -> list[Written]:
    """Write ``records`` with COPY, in the caller's transaction; results in the records' order."""
    cur = await conn.execute(_IDS_SQL, (len(records),))
    rows = await cur.fetchall()
    inputs, outputs = copy_rows(records, [(row[0], row[1]) for row in rows])
    async with conn.cursor() as copier:
        async with copier.copy(COPY_INPUTS) as copy:
            await copy.write(inputs)
        async with copier.copy(COPY_OUTPUTS) as copy:
            await copy.write(outputs)
    return [Written(row[1], row[0], row[2]) for row in rows]
