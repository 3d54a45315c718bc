"""The audit trail, written and read with psycopg 3 on the API's connection pool.

This is the hot path of the service, so it speaks SQL directly (the SQLAlchemy models in
``models.py`` define the same tables for migrations and the CLI). The input and the output of
a prediction are written by ONE statement (a data-modifying CTE), inside the caller's
transaction: there is never an input without its output, and the response is sent only after
the commit. Functions here never commit.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from attrition.data.vocabulary import FEATURE_NAMES

INPUT_COLUMNS = (
    "request_id",
    "client_request_id",
    "api_key_id",
    "source",
    "id_employee",
    "batch_id",
    "batch_row",
    "idempotency_key",
    "request_hash",
    *FEATURE_NAMES,
    "payload",
)
OUTPUT_COLUMNS = (
    "model_version_id",
    "probability",
    "label",
    "threshold",
    "risk_level",
    "explanation",
    "latency_ms",
    "record_mac",
)

# Column names come from the vocabulary; every value is a bound parameter.
INSERT_PREDICTION = (
    "WITH i AS (INSERT INTO prediction_inputs ("  # noqa: S608
    + ", ".join(INPUT_COLUMNS)
    + ") VALUES ("
    + ", ".join(f"%({c})s" for c in INPUT_COLUMNS)
    + ") RETURNING id, received_at) "
    + "INSERT INTO predictions (input_id, "
    + ", ".join(OUTPUT_COLUMNS)
    + ") SELECT i.id, "
    + ", ".join(f"%({c})s" for c in OUTPUT_COLUMNS)
    + " FROM i RETURNING id, input_id, created_at"
)


@dataclass(slots=True)
class PredictionRecord:
    """One input and its output, ready to be written."""

    request_id: str
    api_key_id: int | None
    source: str
    id_employee: int | None
    features: dict[str, Any]
    payload: dict[str, Any]
    model_version_id: int
    probability: float
    label: str
    threshold: float
    risk_level: str
    explanation: dict[str, Any]
    latency_ms: float
    batch_id: str | None = None
    batch_row: int = 0
    idempotency_key: str | None = None
    request_hash: str | None = None
    client_request_id: str | None = None
    record_mac: str | None = None
    """HMAC of what was answered (:func:`attrition.db.chain.record_mac`), set by the service."""
    canonical: bytes | None = None
    """The bytes that MAC covers (:func:`attrition.db.chain.canonical`), kept by the service:
    the group-commit writer sends them to PostgreSQL as they are."""
    payload_json: bytes | None = None
    explanation_json: bytes | None = None
    """``payload`` and ``explanation`` as the canonical bytes hold them
    (:func:`attrition.db.chain.json_of`), when serialised once for the MAC and the COPY of
    a batch (:mod:`attrition.db.bulk`); None elsewhere."""

    def mac_values(self) -> list[Any]:
        """The values a record MAC covers, in the order of ``chain.RECORD_FIELDS``."""
        features = self.features
        return [
            self.request_id,
            self.client_request_id,
            self.api_key_id,
            self.source,
            self.id_employee,
            self.batch_id,
            self.batch_row,
            self.idempotency_key,
            self.request_hash,
            *map(features.get, FEATURE_NAMES),  # genre, statut_marital: optional
            self.payload if self.payload_json is None else orjson.Fragment(self.payload_json),
            self.model_version_id,
            self.probability,
            self.label,
            self.threshold,
            self.risk_level,
            (
                self.explanation
                if self.explanation_json is None
                else orjson.Fragment(self.explanation_json)
            ),
            self.latency_ms,
        ]

    def params(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "client_request_id": self.client_request_id,
            "api_key_id": self.api_key_id,
            "source": self.source,
            "id_employee": self.id_employee,
            "batch_id": self.batch_id,
            "batch_row": self.batch_row,
            "idempotency_key": self.idempotency_key,
            "request_hash": self.request_hash,
            **{name: self.features.get(name) for name in FEATURE_NAMES},
            "payload": Jsonb(self.payload),
            "model_version_id": self.model_version_id,
            "probability": self.probability,
            "label": self.label,
            "threshold": self.threshold,
            "risk_level": self.risk_level,
            "explanation": Jsonb(self.explanation),
            "latency_ms": self.latency_ms,
            "record_mac": self.record_mac,
        }


@dataclass(frozen=True, slots=True)
class Written:
    prediction_id: int
    input_id: int
    created_at: datetime


async def insert_predictions(
    conn: AsyncConnection[Any], records: list[PredictionRecord]
) -> list[Written]:
    """Write inputs and outputs in the caller's transaction; results in the records' order."""
    async with conn.cursor() as cur:
        if len(records) == 1:
            await cur.execute(INSERT_PREDICTION, records[0].params())
            row = await cur.fetchone()
            assert row is not None
            return [Written(*row)]
        await cur.executemany(INSERT_PREDICTION, [r.params() for r in records], returning=True)
        out = []
        while True:
            row = await cur.fetchone()
            assert row is not None
            out.append(Written(*row))
            if not cur.nextset():
                break
        return out


_SELECT_RECORDED = (
    "SELECT p.id AS prediction_id, i.id AS input_id, p.probability, p.label, p.threshold, "
    "p.risk_level, p.explanation, p.created_at, m.version AS model_version, "
    "m.metrics -> 'oof' -> 'risk_bands' AS risk_bands, i.id_employee, i.source, "
    "i.request_id, i.client_request_id, k.key_id AS client, i.api_key_id, i.payload, "
    "i.idempotency_key, i.request_hash, " + ", ".join(f"i.{c}" for c in FEATURE_NAMES) + " "
    "FROM predictions p JOIN prediction_inputs i ON i.id = p.input_id "
    "JOIN model_versions m ON m.id = p.model_version_id "
    "LEFT JOIN api_keys k ON k.id = i.api_key_id "
)


async def get_prediction(
    conn: AsyncConnection[Any], prediction_id: int, *, owner: int | None
) -> dict[str, Any] | None:
    """One recorded prediction; with ``owner`` set, only if that key made it."""
    sql = _SELECT_RECORDED + "WHERE p.id = %s"
    params: list[Any] = [prediction_id]
    if owner is not None:
        sql += " AND i.api_key_id = %s"
        params.append(owner)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchone()


@dataclass(frozen=True, slots=True)
class PredictionFilter:
    owner: int | None = None
    id_employee: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    model_version: str | None = None
    label: str | None = None


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": value}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The last id of the previous page; ValueError if the cursor was not made by us."""
    padded = cursor + "=" * (-len(cursor) % 4)
    data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    value = data["id"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError("bad cursor")
    return value


async def list_predictions(
    conn: AsyncConnection[Any], flt: PredictionFilter, *, after: int | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first, keyset-paginated on the input id (stable under inserts).

    Input and prediction are written by one statement, so the input id orders the trail by
    arrival; ordering by it lets one index give both a filter and the order
    (``(id_employee, id)``, ``(api_key_id, id)``, the primary key), and a page stops after its
    last row whatever the size of the trail. ``after`` is the ``input_id`` of the last row of
    the previous page.
    """
    sql, params = list_query(flt, after=after, limit=limit)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


def list_query(flt: PredictionFilter, *, after: int | None, limit: int) -> tuple[str, list[Any]]:
    """The statement of :func:`list_predictions` and its parameters (also for ``EXPLAIN``)."""
    where: list[str] = []
    params: list[Any] = []
    if flt.owner is not None:
        where.append("i.api_key_id = %s")
        params.append(flt.owner)
    if flt.id_employee is not None:
        where.append("i.id_employee = %s")
        params.append(flt.id_employee)
    if flt.since is not None:
        where.append("p.created_at >= %s")
        params.append(flt.since)
    if flt.until is not None:
        where.append("p.created_at < %s")
        params.append(flt.until)
    if flt.model_version is not None:
        where.append("m.version = %s")
        params.append(flt.model_version)
    if flt.label is not None:
        where.append("p.label = %s")
        params.append(flt.label)
    if after is not None:
        # Said of both sides of the join: the planner does not carry an inequality across it.
        where.append("i.id < %s AND p.input_id < %s")
        params += [after, after]
    sql = _SELECT_RECORDED + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY i.id DESC LIMIT %s"
    params.append(limit)
    return sql, params


async def record_rejection(
    conn: AsyncConnection[Any],
    *,
    request_id: str,
    api_key_id: int | None,
    method: str,
    route: str,
    status: int,
    errors: list[dict[str, Any]],
    payload_excerpt: str | None,
    client_request_id: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO rejected_requests (request_id, client_request_id, api_key_id, method, "
        "route, status, errors, payload_excerpt) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            request_id,
            client_request_id,
            api_key_id,
            method,
            route,
            status,
            Jsonb(errors),
            payload_excerpt,
        ),
    )
