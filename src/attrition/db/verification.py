"""Verifying the audit trail: every record MAC, every link, every published checkpoint.

:func:`verify` recomputes what :mod:`attrition.db.chain` wrote and reports every break it
finds, each with the prediction and its kind ("modifié", "supprimé", "inséré hors chaîne");
records not sealed yet are counted, not reported as breaks. A sealed record deleted by a
GDPR erasure (a tombstone signed with the audit key in ``erasure_log``) is counted apart.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from psycopg.types.json import set_json_loads

from attrition.db.chain import (
    GENESIS,
    RECORD_COLUMNS,
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


BATCH = 2000
"""Rows fetched at a time: the memory of a verification does not depend on the trail's size."""

# Fixed SQL from this module and chain.py; nothing here comes from a request.
_CHAIN_SQL = (
    "SELECT c.position, c.prediction_id, c.record_mac, c.chain_hash, e.record_mac, e.mac, "  # noqa: S608
    + RECORD_COLUMNS
    + " FROM audit_chain c LEFT JOIN (predictions p JOIN prediction_inputs i "
    "ON i.id = p.input_id) ON p.id = c.prediction_id "
    "LEFT JOIN erasure_log e ON e.prediction_id = c.prediction_id ORDER BY c.position"
)
_UNSEALED_SQL = (
    RECORD_SQL  # noqa: S608
    + "WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.prediction_id = p.id) ORDER BY p.id"
)
# The identity of a record is its request and its row in the batch (a copy keeps both).
_COPIES_SQL = (
    "WITH d AS (SELECT request_id, batch_row FROM prediction_inputs "
    "GROUP BY request_id, batch_row HAVING count(*) > 1) "
    "SELECT p.id, i.request_id, i.batch_row FROM d "
    "JOIN prediction_inputs i USING (request_id, batch_row) "
    "JOIN predictions p ON p.input_id = i.id ORDER BY p.id"
)
_FIRST_WITH_MAC_SQL = (
    "SELECT p.id FROM predictions p WHERE p.record_mac IS NOT NULL "
    "AND EXISTS (SELECT 1 FROM prediction_inputs i WHERE i.id = p.input_id) ORDER BY p.id LIMIT 1"
)


async def _stream(
    conn: AsyncConnection[Any], name: str, sql: str, batch: int
) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The rows of ``sql``, ``batch`` at a time, from a server-side cursor.

    The next batch is asked for before this one is handed out: PostgreSQL reads it while the
    caller recomputes MACs (the caller must not use ``conn`` meanwhile). Two batches at most
    are held.
    """
    async with conn.cursor(name=name) as cur:
        set_json_loads(orjson.loads, cur)
        await cur.execute(sql)
        rows = await cur.fetchmany(batch)
        while rows:
            ahead = asyncio.ensure_future(cur.fetchmany(batch))
            await asyncio.sleep(0)  # lets it send the FETCH
            try:
                yield rows
            finally:
                rows = await ahead


async def _copies(conn: AsyncConnection[Any]) -> dict[int, int]:
    """Each record that repeats an earlier one's identity, and that earlier record."""
    cur = await conn.execute(_COPIES_SQL)
    first: dict[tuple[str, int], int] = {}
    copies: dict[int, int] = {}
    for pid, request_id, batch_row in await cur.fetchall():
        earlier = first.setdefault((request_id, batch_row), pid)
        if earlier != pid:
            copies[pid] = earlier
    return copies


def _copy(pid: int, earlier: int) -> Break:
    return Break(INSERTED, pid, None, f"copie de la prédiction {earlier} (même requête)")


async def verify(
    conn: AsyncConnection[Any],
    key: AuditKey,
    checkpoints: Sequence[Checkpoint] = (),
    *,
    batch: int = BATCH,
) -> Verification:
    """Recompute every record MAC and every link; compare the chain with ``checkpoints``.

    The chain and the records are read ``batch`` rows at a time, in one snapshot: what is
    held in memory is a batch, the breaks found and the checkpoints' positions.
    """
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
        start = int(anchor[0]) if anchor else 0
        wanted = {c.position for c in checkpoints if c.position > start}
        by_position: dict[int, tuple[int, str]] = {}
        head = await _walk_chain(conn, key, result, anchor, wanted, by_position, batch)
        await _walk_unsealed(conn, key, result, batch)
    _compare_checkpoints(key, result, checkpoints, start, head, by_position)
    return result


async def _walk_chain(
    conn: AsyncConnection[Any],
    key: AuditKey,
    result: Verification,
    anchor: tuple[Any, ...] | None,
    wanted: set[int],
    by_position: dict[int, tuple[int, str]],
    batch: int,
) -> int:
    """Check every link and the record it covers, in position order; the head's position."""
    breaks = result.breaks
    start, previous = (int(anchor[0]), str(anchor[1])) if anchor else (0, GENESIS)
    expected = start + 1
    known = True  # whether ``previous`` is a link we could check
    async for rows in _stream(conn, "audit_verify_chain", _CHAIN_SQL, batch):
        for row in rows:
            position, pid, mac, stored, erased_mac, erasure_signature = row[:6]
            if position in wanted:
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
            if row[6] is None:  # no record any more
                if erased_mac == mac and hmac.compare_digest(
                    erasure_mac(key, pid, erased_mac), erasure_signature
                ):
                    result.erased += 1
                else:
                    breaks.append(Break(DELETED, pid, position, "scellée puis retirée de la trace"))
                continue
            stored_mac = row[7]
            if record_mac(key, row[8:]) != mac or (stored_mac is not None and stored_mac != mac):
                breaks.append(
                    Break(
                        MODIFIED,
                        pid,
                        position,
                        "le contenu ne correspond plus à l'empreinte calculée à la réponse",
                    )
                )
    return expected - 1


async def _walk_unsealed(
    conn: AsyncConnection[Any], key: AuditKey, result: Verification, batch: int
) -> None:
    """Copies of a record, and the records no link covers yet, in prediction order."""
    breaks = result.breaks
    copies = sorted((await _copies(conn)).items())
    cur = await conn.execute(_FIRST_WITH_MAC_SQL)
    found = await cur.fetchone()
    first_with_mac = found[0] if found else None
    shown = 0
    async for rows in _stream(conn, "audit_verify_unsealed", _UNSEALED_SQL, batch):
        for row in rows:
            pid, stored_mac = row[0], row[1]
            while shown < len(copies) and copies[shown][0] <= pid:
                breaks.append(_copy(*copies[shown]))
                shown += 1
            if stored_mac is None:
                if first_with_mac is not None and pid > first_with_mac:
                    breaks.append(
                        Break(INSERTED, pid, None, "aucune empreinte : écrite sans le service")
                    )
                    continue
            elif stored_mac != record_mac(key, row[2:]):
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
    breaks.extend(_copy(*c) for c in copies[shown:])


def _compare_checkpoints(
    key: AuditKey,
    result: Verification,
    checkpoints: Sequence[Checkpoint],
    start: int,
    head: int,
    by_position: dict[int, tuple[int, str]],
) -> None:
    breaks = result.breaks
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
