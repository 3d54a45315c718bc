"""GDPR duty on the audit trail: purge old records (the export is in services/records.py).

The purge runs as the owner and is the only path that lifts the append-only triggers, for its
own transaction only (``SET LOCAL attrition.allow_purge``). It removes a prefix of the trail
(every prediction up to the last one older than the cutoff), the matching hash-chain links
and old rejected requests, and writes its own append-only ``purge_log`` record with the last
removed link, from which chain verification continues.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from attrition.errors import ConflictError


@dataclass(frozen=True, slots=True)
class PurgeReport:
    cutoff: datetime
    up_to_prediction_id: int | None
    predictions: int
    inputs: int
    rejected: int


async def purge(conn: AsyncConnection[Any], cutoff: datetime) -> PurgeReport:
    """Delete audit records older than ``cutoff`` in one transaction and log the purge."""
    async with conn.transaction():
        await conn.execute("SET LOCAL attrition.allow_purge = 'on'")
        cur = await conn.execute("SELECT max(id) FROM predictions WHERE created_at < %s", (cutoff,))
        row = await cur.fetchone()
        last = row[0] if row else None
        if last is None:
            cur = await conn.execute(
                "DELETE FROM rejected_requests WHERE received_at < %s", (cutoff,)
            )
            return PurgeReport(cutoff, None, 0, 0, cur.rowcount)
        cur = await conn.execute(
            "SELECT chain_hash FROM audit_chain WHERE prediction_id = %s", (last,)
        )
        link = await cur.fetchone()
        if link is None:
            raise ConflictError(
                "Les prédictions à purger ne sont pas encore scellées : lancez d'abord "
                "« attrition audit seal »."
            )
        cur = await conn.execute(
            "DELETE FROM predictions WHERE id <= %s RETURNING input_id", (last,)
        )
        input_ids = [r[0] for r in await cur.fetchall()]
        cur = await conn.execute("DELETE FROM prediction_inputs WHERE id = ANY(%s)", (input_ids,))
        inputs = cur.rowcount
        await conn.execute("DELETE FROM audit_chain WHERE prediction_id <= %s", (last,))
        cur = await conn.execute("DELETE FROM rejected_requests WHERE received_at < %s", (cutoff,))
        rejected = cur.rowcount
        await conn.execute("DELETE FROM idempotency_keys WHERE expires_at < now()")
        await conn.execute(
            "INSERT INTO purge_log (cutoff, up_to_prediction_id, anchor_hash, "
            "predictions_deleted, inputs_deleted, rejected_deleted) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (cutoff, last, link[0], len(input_ids), inputs, rejected),
        )
        return PurgeReport(cutoff, last, len(input_ids), inputs, rejected)
