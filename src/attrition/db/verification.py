"""Verifying the audit trail: every record MAC, every link, every published checkpoint.

:func:`verify` recomputes what :mod:`attrition.db.chain` wrote and reports every break it
finds, each with the prediction and its kind ("modifié", "supprimé", "inséré hors chaîne");
records not sealed yet are counted, not reported as breaks. A sealed record deleted by a
GDPR erasure (a tombstone signed with the audit key in ``erasure_log``) is counted apart.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from psycopg.types.json import set_json_loads

from attrition.db.chain import (
    GENESIS,
    RECORD_SQL,
    AuditKey,
    Checkpoint,
    erasure_mac,
    link,
    record_mac,
)

MODIFIED = "enregistrement modifié"
DELETED = "enregistrement supprimé"
INSERTED = "enregistrement inséré hors chaîne"
UNSEALED = "pas encore scellé"


@dataclass(frozen=True, slots=True)
class Break:
    """One finding of :func:`verify`."""

    kind: str
    prediction_id: int | None
    position: int | None
    detail: str

    def describe(self) -> str:
        where = f"prédiction {self.prediction_id}" if self.prediction_id is not None else "chaîne"
        if self.position is not None:
            where += f" (lien n° {self.position})"
        return f"{where} : {self.kind} — {self.detail}"


@dataclass(slots=True)
class Verification:
    """Result of walking the chain: links checked, unsealed records, and every break."""

    checked: int = 0
    unsealed: int = 0
    unsealed_ids: list[int] = field(default_factory=list)
    breaks: list[Break] = field(default_factory=list)
    checkpoints: int = 0
    erased: int = 0
    """Sealed records deleted by a signed GDPR erasure (not a break)."""

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def broken_at(self) -> int | None:
        return self.breaks[0].prediction_id if self.breaks else None

    @property
    def reason(self) -> str | None:
        return self.breaks[0].kind if self.breaks else None

    def of_kind(self, kind: str) -> list[Break]:
        return [b for b in self.breaks if b.kind == kind]


@dataclass(frozen=True, slots=True)
class _Record:
    stored_mac: str | None
    computed_mac: str
    identity: tuple[str, int]


async def _records(conn: AsyncConnection[Any], key: AuditKey) -> dict[int, _Record]:
    records: dict[int, _Record] = {}
    async with conn.cursor(name="audit_verify") as cur:
        set_json_loads(orjson.loads, cur)
        await cur.execute(RECORD_SQL + "ORDER BY p.id")
        async for row in cur:
            values = row[2:]
            records[row[0]] = _Record(row[1], record_mac(key, values), (values[0], values[6]))
    return records


async def verify(
    conn: AsyncConnection[Any], key: AuditKey, checkpoints: Sequence[Checkpoint] = ()
) -> Verification:
    """Recompute every record MAC and every link; compare the chain with ``checkpoints``."""
    result = Verification()
    outside = conn.info.transaction_status == TransactionStatus.IDLE
    async with conn.transaction():
        if outside:  # one snapshot for the chain, the records and the anchor
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cur = await conn.execute(
            "SELECT up_to_position, anchor_hash FROM purge_log "
            "WHERE up_to_position IS NOT NULL ORDER BY id DESC LIMIT 1"
        )
        anchor = await cur.fetchone()
        cur = await conn.execute(
            "SELECT position, prediction_id, record_mac, chain_hash FROM audit_chain "
            "ORDER BY position"
        )
        chain = await cur.fetchall()
        cur = await conn.execute("SELECT prediction_id, record_mac, mac FROM erasure_log")
        erasures = {
            pid: mac
            for pid, mac, signature in await cur.fetchall()
            if hmac.compare_digest(erasure_mac(key, pid, mac), signature)
        }
        records = await _records(conn, key)
    breaks = result.breaks
    start, previous = (int(anchor[0]), str(anchor[1])) if anchor else (0, GENESIS)
    expected = start + 1
    known = True  # whether ``previous`` is a link we could check
    by_position: dict[int, tuple[int, str]] = {}
    for position, pid, mac, stored in chain:
        by_position[position] = (pid, stored)
        if position != expected:
            breaks.append(
                Break(
                    DELETED,
                    None,
                    expected,
                    f"liens n° {expected} à {position - 1} absents de la chaîne",
                )
            )
            known = False
        if known and not hmac.compare_digest(link(key, previous, position, pid, mac), stored):
            breaks.append(
                Break(
                    INSERTED,
                    pid,
                    position,
                    "lien qui n'a pas été produit par le scelleur (HMAC invalide sans la clé)",
                )
            )
        previous, known, expected = stored, True, position + 1
        result.checked += 1
        record = records.get(pid)
        if record is None and erasures.get(pid) == mac:
            result.erased += 1
        elif record is None:
            breaks.append(Break(DELETED, pid, position, "scellée puis retirée de la trace"))
        elif record.computed_mac != mac or (
            record.stored_mac is not None and record.stored_mac != mac
        ):
            breaks.append(
                Break(
                    MODIFIED,
                    pid,
                    position,
                    "le contenu ne correspond plus à l'empreinte calculée à la réponse",
                )
            )
    sealed = {pid for pid, _ in by_position.values()}
    first_with_mac = min((pid for pid, r in records.items() if r.stored_mac), default=None)
    seen: dict[tuple[str, int], int] = {}
    for pid, record in records.items():
        earlier = seen.setdefault(record.identity, pid)
        if earlier != pid:
            breaks.append(
                Break(INSERTED, pid, None, f"copie de la prédiction {earlier} (même requête)")
            )
        if pid in sealed:
            continue
        if record.stored_mac is None:
            if first_with_mac is not None and pid > first_with_mac:
                breaks.append(
                    Break(INSERTED, pid, None, "aucune empreinte : écrite sans le service")
                )
                continue
        elif record.stored_mac != record.computed_mac:
            breaks.append(
                Break(
                    MODIFIED,
                    pid,
                    None,
                    "pas encore scellée, et son contenu ne correspond plus à l'empreinte "
                    "calculée à la réponse",
                )
            )
            continue
        result.unsealed += 1
        if len(result.unsealed_ids) < 20:
            result.unsealed_ids.append(pid)
    head = chain[-1][0] if chain else start
    for checkpoint in sorted(checkpoints, key=lambda c: c.position):
        if checkpoint.position <= start:
            continue
        if not checkpoint.valid(key):
            breaks.append(
                Break(
                    INSERTED,
                    checkpoint.prediction_id,
                    checkpoint.position,
                    f"point de contrôle du {checkpoint.published_at} à la signature invalide",
                )
            )
            continue
        result.checkpoints += 1
        found = by_position.get(checkpoint.position)
        if found is None:
            breaks.append(
                Break(
                    DELETED,
                    checkpoint.prediction_id,
                    checkpoint.position,
                    f"publiée au point de contrôle du {checkpoint.published_at}, absente : "
                    f"liens n° {head + 1} à {checkpoint.position} supprimés",
                )
            )
        elif found != (checkpoint.prediction_id, checkpoint.chain_hash):
            breaks.append(
                Break(
                    MODIFIED,
                    checkpoint.prediction_id,
                    checkpoint.position,
                    f"la chaîne diffère du point de contrôle du {checkpoint.published_at}",
                )
            )
    return result
