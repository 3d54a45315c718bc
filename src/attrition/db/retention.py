"""GDPR duties on the audit trail: export everything about one employee, purge old records.

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
from psycopg.rows import dict_row

from attrition.db import audit, chain
from attrition.errors import ConflictError, NotFoundError


@dataclass(frozen=True, slots=True)
class PurgeReport:
    cutoff: datetime
    up_to_prediction_id: int | None
    predictions: int
    inputs: int
    rejected: int


async def purge(conn: AsyncConnection[Any], cutoff: datetime) -> PurgeReport:
    """Delete audit records older than ``cutoff`` in one transaction and log the purge.

    What goes is a prefix of the chain (positions 1..P, every one older than the cutoff), so
    that verification resumes from the last removed link, recorded in ``purge_log``.
    """
    async with conn.transaction():
        await conn.execute("SET LOCAL attrition.allow_purge = 'on'")
        # No sealer may extend the chain while its prefix is removed.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (chain.LOCK_ID,))
        cur = await conn.execute(
            "SELECT 1 FROM predictions p WHERE p.created_at < %s AND NOT EXISTS "
            "(SELECT 1 FROM audit_chain c WHERE c.prediction_id = p.id) LIMIT 1",
            (cutoff,),
        )
        if await cur.fetchone() is not None:
            raise ConflictError(
                "Des prédictions à purger ne sont pas encore scellées : lancez d'abord "
                "« attrition audit seal »."
            )
        cur = await conn.execute(
            "SELECT (SELECT min(c.position) - 1 FROM audit_chain c JOIN predictions p "
            "ON p.id = c.prediction_id WHERE p.created_at >= %s), "
            "(SELECT max(position) FROM audit_chain)",
            (cutoff,),
        )
        row = await cur.fetchone()
        up_to = None if row is None else (row[0] if row[0] is not None else row[1])
        link = None
        if up_to is not None:
            cur = await conn.execute(
                "SELECT prediction_id, chain_hash FROM audit_chain WHERE position = %s", (up_to,)
            )
            link = await cur.fetchone()
        if link is None:
            cur = await conn.execute(
                "DELETE FROM rejected_requests WHERE received_at < %s", (cutoff,)
            )
            return PurgeReport(cutoff, None, 0, 0, cur.rowcount)
        cur = await conn.execute(
            "DELETE FROM audit_chain WHERE position <= %s RETURNING prediction_id", (up_to,)
        )
        sealed = [r[0] for r in await cur.fetchall()]
        cur = await conn.execute(
            "DELETE FROM predictions WHERE id = ANY(%s) RETURNING input_id", (sealed,)
        )
        input_ids = [r[0] for r in await cur.fetchall()]
        cur = await conn.execute("DELETE FROM prediction_inputs WHERE id = ANY(%s)", (input_ids,))
        inputs = cur.rowcount
        cur = await conn.execute("DELETE FROM rejected_requests WHERE received_at < %s", (cutoff,))
        rejected = cur.rowcount
        await conn.execute("DELETE FROM idempotency_keys WHERE expires_at < now()")
        await conn.execute(
            "INSERT INTO purge_log (cutoff, up_to_prediction_id, up_to_position, anchor_hash, "
            "predictions_deleted, inputs_deleted, rejected_deleted) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (cutoff, max(sealed), up_to, link[1], len(input_ids), inputs, rejected),
        )
        return PurgeReport(cutoff, max(sealed), len(input_ids), inputs, rejected)


async def export_employee(conn: AsyncConnection[Any], id_employee: int) -> dict[str, Any]:
    """Everything recorded about one employee: the stored record and every prediction."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM employee_features WHERE id_employee = %s", (id_employee,))
        record = await cur.fetchone()
    predictions = await audit.list_predictions(
        conn, audit.PredictionFilter(id_employee=id_employee), after=None, limit=1_000_000
    )
    if record is None and not predictions:
        raise NotFoundError(f"Aucune donnée enregistrée pour l'employé {id_employee}.")
    from attrition.api.routers.predictions import recorded

    return {
        "id_employee": id_employee,
        "dossier": record,
        "predictions": [recorded(r) for r in predictions],
        "note": (
            "Prédictions : aide à la décision RH revue par une personne, jamais une décision "
            "automatisée (RGPD, art. 22)."
        ),
    }
