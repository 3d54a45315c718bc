"""GDPR duty on the audit trail: purge old records (the export is in services/records.py).

The purge runs as the owner and is the only path that lifts the append-only triggers, for its
own transaction only (``SET LOCAL attrition.allow_purge``). It removes a prefix of the trail
(every prediction up to the last one older than the cutoff), the matching hash-chain links,
old rejected requests and the daily quota counts of days before the cutoff, and writes its
own append-only ``purge_log`` record with the last removed link, from which chain
verification continues.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from attrition.db import chain
from attrition.errors import ConflictError, NotFoundError


@dataclass(frozen=True, slots=True)
class PurgeReport:
    cutoff: datetime
    up_to_prediction_id: int | None
    predictions: int
    inputs: int
    rejected: int
    usage_counts: int = 0
    """Daily quota counts (``usage_counters``) of days before the cutoff's, removed."""


async def purge(conn: AsyncConnection[Any], cutoff: datetime) -> PurgeReport:
    """Delete audit records older than ``cutoff`` in one transaction and log the purge.

    What goes is a prefix of the chain (positions 1..P, every one older than the cutoff), so
    that verification resumes from the last removed link, recorded in ``purge_log``.
    """
    async with conn.transaction():
        await conn.execute("SET LOCAL attrition.allow_purge = 'on'")
        # No sealer may extend the chain while its prefix is removed.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (chain.LOCK_ID,))
        # The unsealed predictions are those of the sealing queue: read it, not the trail.
        cur = await conn.execute(
            "SELECT 1 FROM audit_pending q JOIN predictions p ON p.id = q.prediction_id "
            "WHERE p.created_at < %s AND NOT EXISTS "
            "(SELECT 1 FROM audit_chain c WHERE c.prediction_id = p.id) LIMIT 1",
            (cutoff,),
        )
        if await cur.fetchone() is not None:
            raise ConflictError(
                "Des prédictions à purger ne sont pas encore scellées : lancez d'abord "
                "« attrition audit seal »."
            )
        # The chain walked from its start, each link's prediction looked up by its key, up
        # to the first one not older than the cutoff: what is read is what goes (a join
        # would read the whole trail to find that first link).
        cur = await conn.execute(
            "SELECT (SELECT c.position - 1 FROM audit_chain c WHERE (SELECT p.created_at "
            "FROM predictions p WHERE p.id = c.prediction_id) >= %s "
            "ORDER BY c.position LIMIT 1), (SELECT max(position) FROM audit_chain)",
            (cutoff,),
        )
        row = await cur.fetchone()
        up_to = None if row is None else (row[0] if row[0] is not None else row[1])
        # A key's count of a UTC day serves only that day's quota: kept as long as the trail.
        cur = await conn.execute(
            "DELETE FROM usage_counters WHERE day < (%s::timestamptz AT TIME ZONE 'UTC')::date",
            (cutoff,),
        )
        usage_counts = cur.rowcount
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
            return PurgeReport(cutoff, None, 0, 0, cur.rowcount, usage_counts)
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
        return PurgeReport(cutoff, max(sealed), len(input_ids), inputs, rejected, usage_counts)


# A refused request is about an employee when its excerpt names the id (the route is stored
# as a template, without the id).
MENTIONS = "payload_excerpt ~ ('\"id_employee\"\\s*:\\s*' || %(id)s::text || '([^0-9]|$)')"


async def refusals_about(conn: AsyncConnection[Any], id_employee: int) -> list[dict[str, Any]]:
    """The refused requests whose excerpt names the employee (GDPR access)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT request_id, client_request_id, received_at AS recu_le, "  # noqa: S608
            "method AS methode, route, status AS statut, errors AS erreurs, "
            f"payload_excerpt AS extrait FROM rejected_requests WHERE {MENTIONS} ORDER BY id",
            {"id": id_employee},
        )
        return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class ErasureReport:
    id_employee: int
    predictions: int
    refused: int
    idempotency: int
    dossier: bool


async def erase_employee(
    conn: AsyncConnection[Any], key: chain.AuditKey, id_employee: int
) -> ErasureReport:
    """Delete everything about one employee; the trail stays verifiable (GDPR art. 17).

    Every prediction of the employee must be sealed first (``attrition audit seal``): its
    link stays in the chain, its record is deleted, and ``erasure_log`` keeps the record MAC
    the link covers, signed with the audit key, so that ``verify`` accepts the gap and an
    owner without the key cannot pass a deletion off as an erasure.
    """
    async with conn.transaction():
        await conn.execute("SET LOCAL attrition.allow_purge = 'on'")
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (chain.LOCK_ID,))
        cur = await conn.execute(
            "SELECT p.id, p.input_id, c.record_mac FROM predictions p "
            "JOIN prediction_inputs i ON i.id = p.input_id "
            "LEFT JOIN audit_chain c ON c.prediction_id = p.id WHERE i.id_employee = %s",
            (id_employee,),
        )
        rows = await cur.fetchall()
        if any(mac is None for _, _, mac in rows):
            raise ConflictError(
                "Des prédictions de cet employé ne sont pas encore scellées : lancez d'abord "
                "« attrition audit seal »."
            )
        cur = await conn.execute(
            "SELECT count(*) FROM employees WHERE id_employee = %s", (id_employee,)
        )
        found = await cur.fetchone()
        has_record = bool(found and found[0])
        if rows:
            async with conn.cursor() as c:
                await c.executemany(
                    "INSERT INTO erasure_log (prediction_id, record_mac, mac) VALUES (%s, %s, %s)",
                    [(pid, mac, chain.erasure_mac(key, pid, mac)) for pid, _, mac in rows],
                )
            await conn.execute(
                "DELETE FROM predictions WHERE id = ANY(%s)", ([pid for pid, _, _ in rows],)
            )
            await conn.execute(
                "DELETE FROM prediction_inputs WHERE id = ANY(%s)", ([i for _, i, _ in rows],)
            )
        cur = await conn.execute(
            f"DELETE FROM rejected_requests WHERE {MENTIONS}",  # noqa: S608
            {"id": id_employee},
        )
        refused = max(cur.rowcount, 0)
        cur = await conn.execute(
            "DELETE FROM idempotency_keys WHERE response->>'id_employee' = %(id)s::text "
            "OR jsonb_path_exists(response, '$.predictions[*] ? (@.id_employee == $id)', "
            "jsonb_build_object('id', %(id)s::int))",
            {"id": id_employee},
        )
        replays = max(cur.rowcount, 0)
        await conn.execute("DELETE FROM employees WHERE id_employee = %s", (id_employee,))
        if not rows and not has_record and not refused:
            raise NotFoundError(f"Aucune donnée enregistrée pour l'employé {id_employee}.")
        return ErasureReport(id_employee, len(rows), refused, replays, has_record)
