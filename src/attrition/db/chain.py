"""Tamper evidence for the audit trail: a hash chain over every recorded prediction.

Sealing runs beside the prediction path, never in it: a background task (and
``attrition audit seal``) takes the predictions committed since the last link, in id order,
and appends ``sha256(previous hash || canonical record)`` for each. Only predictions older
than a safety lag are sealed, so a transaction that took an id but commits late is never
skipped. ``verify`` walks the chain and names the first record that was altered or deleted.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import set_json_loads

from attrition.data.vocabulary import FEATURE_NAMES

GENESIS = "0" * 64
LOCK_ID = 7_140_001  # advisory lock: one sealer at a time across processes
SLICE = 100  # records hashed between two yields to the event loop (about 2 ms of work)

# Fixed column names from the vocabulary; nothing here comes from a request.
RECORD_SQL = (
    "SELECT p.id, p.input_id, p.model_version_id, p.probability, p.label::text, p.threshold, "  # noqa: S608
    "p.risk_level::text, p.explanation, p.latency_ms, p.created_at, i.received_at, "
    "i.request_id, i.api_key_id, i.source::text, i.id_employee, i.batch_id, i.batch_row, "
    "i.idempotency_key, i.request_hash, i.payload, "
    + ", ".join(f"i.{c}::text" for c in FEATURE_NAMES)
    + " FROM predictions p JOIN prediction_inputs i ON i.id = p.input_id "
)


def canonical(row: tuple[Any, ...]) -> bytes:
    """A deterministic byte form of one joined input/output row."""
    return orjson.dumps(list(row), option=orjson.OPT_SORT_KEYS, default=str)


def link(previous: str, row: tuple[Any, ...]) -> str:
    return hashlib.sha256(previous.encode() + canonical(row)).hexdigest()


async def seal(conn: AsyncConnection[Any], *, lag_seconds: float = 30.0, limit: int = 5000) -> int:
    """Append links for unsealed predictions older than ``lag_seconds``; return how many."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
        cur = await conn.execute(
            "SELECT prediction_id, chain_hash FROM audit_chain ORDER BY prediction_id DESC LIMIT 1"
        )
        last = await cur.fetchone()
        last_id, previous = (last[0], last[1]) if last else (0, GENESIS)
        async with conn.cursor() as cur:
            # orjson reads the JSONB columns (the same Python values as json.loads, several
            # times faster): sealing runs in the API workers' event loop.
            set_json_loads(orjson.loads, cur)
            await cur.execute(
                RECORD_SQL + "WHERE p.id > %s AND p.created_at < now() - make_interval(secs => %s) "
                "ORDER BY p.id LIMIT %s",
                (last_id, lag_seconds, limit),
            )
            rows = await cur.fetchall()
        links = []
        for start in range(0, len(rows), SLICE):
            if start:
                # Hand the event loop back between slices: sealing thousands of records in
                # one go held it for a few hundred ms, which showed as the p99 of requests.
                await asyncio.sleep(0)
            for row in rows[start : start + SLICE]:
                previous = link(previous, tuple(row))
                links.append((row[0], previous))
        if links:
            async with conn.cursor() as c:
                await c.executemany(
                    "INSERT INTO audit_chain (prediction_id, chain_hash) VALUES (%s, %s)", links
                )
        return len(links)


@dataclass(frozen=True, slots=True)
class Verification:
    """Result of walking the chain: how many links held, and the first break if any."""

    checked: int
    unsealed: int
    broken_at: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


async def verify(conn: AsyncConnection[Any]) -> Verification:
    """Recompute the chain from the records; report the first altered or missing record."""
    cur = await conn.execute(
        "SELECT up_to_prediction_id, anchor_hash FROM purge_log ORDER BY id DESC LIMIT 1"
    )
    anchor = await cur.fetchone()
    cur = await conn.execute(
        "SELECT prediction_id, chain_hash FROM audit_chain ORDER BY prediction_id"
    )
    chain = await cur.fetchall()
    cur = await conn.execute(RECORD_SQL + "ORDER BY p.id")
    records = {row[0]: tuple(row) for row in await cur.fetchall()}
    # After a retention purge the chain continues from the last removed link.
    previous = anchor[1] if anchor else GENESIS
    for index, (prediction_id, stored) in enumerate(chain):
        row = records.get(prediction_id)
        if row is None:
            return Verification(index, 0, prediction_id, "enregistrement supprimé")
        previous = link(previous, row)
        if previous != stored:
            return Verification(index, 0, prediction_id, "enregistrement modifié")
    sealed = {pid for pid, _ in chain}
    unsealed = sum(1 for pid in records if pid not in sealed)
    last = chain[-1][0] if chain else 0
    for pid in records:
        if pid < last and pid not in sealed:
            return Verification(len(chain), unsealed, pid, "enregistrement inséré hors chaîne")
    return Verification(len(chain), unsealed)
