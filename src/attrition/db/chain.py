"""Forgery evidence for the audit trail: record MACs, a keyed chain, signed checkpoints.

Three layers, each computed with a key the database never holds (``ATTRITION_AUDIT_KEY``):

* **record MAC** — when the service answers, it computes an HMAC-SHA256 of exactly what it
  recorded (input, output, request ids) and writes it with the row (``predictions.record_mac``).
  A row changed afterwards, sealed or not, no longer matches its MAC.
* **chain** — a sealer (a background task of every API process, or ``attrition audit seal``)
  takes the committed predictions not sealed yet (a queue filled by a trigger), in id order,
  under an advisory lock (one sealer at a time across processes and servers), gives each the
  next position and appends ``HMAC(previous link, position, prediction id, record MAC)``
  through the ``audit_append`` function. Correctness does not depend on clocks or on the
  order of commits: a row that commits late is simply sealed at a later position.
* **checkpoints** — after each seal, the chain head (position, prediction id, link) is
  signed and published outside the database: a log line, a file under the checkpoint
  directory, and ``GET /v1/audit/checkpoint``. Removing the newest rows together with their
  links is detected against the last published checkpoint.

:mod:`attrition.db.verification` walks everything and reports every break, each with its kind.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import set_json_loads

from attrition.data.vocabulary import FEATURE_NAMES, FEATURES_BY_NAME

log = logging.getLogger(__name__)

GENESIS = "0" * 64
LOCK_ID = 7_140_001  # advisory lock: one sealer at a time across processes and servers
SLICE = 500  # links computed between two yields to the event loop
MAC_VERSION = "attrition-audit-record-v1"

# The fields a record MAC covers, in this order; ``kind`` normalises the Python value so
# that what the service answered and what PostgreSQL gives back serialise identically.
INPUT_FIELDS: tuple[tuple[str, str], ...] = (
    ("request_id", "str"),
    ("client_request_id", "str"),
    ("api_key_id", "int"),
    ("source", "str"),
    ("id_employee", "int"),
    ("batch_id", "str"),
    ("batch_row", "int"),
    ("idempotency_key", "str"),
    ("request_hash", "str"),
    *((name, {"category": "str"}.get(FEATURES_BY_NAME[name].kind, FEATURES_BY_NAME[name].kind))
      for name in FEATURE_NAMES),
    ("payload", "json"),
)  # fmt: skip
OUTPUT_FIELDS: tuple[tuple[str, str], ...] = (
    ("model_version_id", "int"),
    ("probability", "float"),
    ("label", "str"),
    ("threshold", "float"),
    ("risk_level", "str"),
    ("explanation", "json"),
    ("latency_ms", "float"),
)
RECORD_FIELDS = INPUT_FIELDS + OUTPUT_FIELDS
_KINDS = tuple(kind for _, kind in RECORD_FIELDS)

# Fixed column names from this module; nothing here comes from a request.
_CAST = {"str": "::text"}
RECORD_COLUMNS = (
    "p.id, p.record_mac, "
    + ", ".join(f"i.{n}{_CAST.get(k, '')}" for n, k in INPUT_FIELDS)
    + ", "
    + ", ".join(f"p.{n}{_CAST.get(k, '')}" for n, k in OUTPUT_FIELDS)
)
"""The id, the stored MAC, then the values a record MAC covers (``p`` and ``i`` joined)."""
RECORD_SQL = (
    "SELECT "  # noqa: S608
    + RECORD_COLUMNS
    + " FROM predictions p JOIN prediction_inputs i ON i.id = p.input_id "
)


@dataclass(frozen=True, slots=True)
class AuditKey:
    """Sub-keys derived from ``ATTRITION_AUDIT_KEY`` (one per use, never the key itself)."""

    record: bytes
    link: bytes
    checkpoint: bytes
    erasure: bytes
    key_id: str

    @classmethod
    def derive(cls, secret: str | bytes) -> AuditKey:
        raw = secret.encode() if isinstance(secret, str) else secret

        def sub(label: str) -> bytes:
            return hmac.new(raw, label.encode(), hashlib.sha256).digest()

        return cls(
            record=sub("attrition/audit/record"),
            link=sub("attrition/audit/link"),
            checkpoint=sub("attrition/audit/checkpoint"),
            erasure=sub("attrition/audit/erasure"),
            key_id=sub("attrition/audit/key-id").hex()[:12],
        )


# orjson already writes an Enum as its value, a str or int subclass as the base type and
# numpy scalars as numbers: only a float column given an int (e.g. 12 for 12.0) needs a
# conversion for both sides to serialise identically. Kept to one pass over a few indexes:
# this runs for every prediction, on the request path.
_FLOAT_INDEXES = tuple(i for i, kind in enumerate(_KINDS) if kind == "float")
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY


def canonical(values: Sequence[Any]) -> bytes:
    """The byte form a record MAC covers; ``values`` in the order of :data:`RECORD_FIELDS`."""
    if len(values) != len(_KINDS):
        raise ValueError(f"{len(values)} values for {len(_KINDS)} fields")
    items = [MAC_VERSION, *values]
    for index in _FLOAT_INDEXES:
        value = items[index + 1]
        if value is not None and type(value) is not float:
            items[index + 1] = float(value)
    return orjson.dumps(items, option=_OPTIONS)


def json_of(value: Any) -> bytes:
    """``value`` (a record's payload or explanation) as :func:`canonical` writes it inside a
    record's bytes: wrapped in ``orjson.Fragment``, it is copied there as it is."""
    return orjson.dumps(value, option=_OPTIONS)


def record_mac(key: AuditKey, values: Sequence[Any]) -> str:
    return mac_of_canonical(key, canonical(values))


def mac_of_canonical(key: AuditKey, body: bytes) -> str:
    """The record MAC of ``body``, the bytes :func:`canonical` gave for a record's values."""
    return hmac.digest(key.record, body, "sha256").hex()


def erasure_mac(key: AuditKey, prediction_id: int, mac: str) -> str:
    """Signs a GDPR erasure: the record is gone, the MAC its link covered is vouched for."""
    return hmac.new(key.erasure, f"{prediction_id}|{mac}".encode(), hashlib.sha256).hexdigest()


def link(key: AuditKey, previous: str, position: int, prediction_id: int, mac: str) -> str:
    message = f"{previous}|{position}|{prediction_id}|{mac}".encode()
    return hmac.digest(key.link, message, "sha256").hex()


# ---- sealing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of the chain head: published outside the database."""

    position: int
    prediction_id: int
    chain_hash: str
    published_at: str
    key_id: str
    signature: str

    @classmethod
    def sign(cls, key: AuditKey, position: int, prediction_id: int, chain_hash: str) -> Checkpoint:
        published = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(
            position,
            prediction_id,
            chain_hash,
            published,
            key.key_id,
            _checkpoint_mac(key, position, prediction_id, chain_hash, published),
        )

    def valid(self, key: AuditKey) -> bool:
        expected = _checkpoint_mac(
            key, self.position, self.prediction_id, self.chain_hash, self.published_at
        )
        return hmac.compare_digest(expected, self.signature)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _checkpoint_mac(
    key: AuditKey, position: int, prediction_id: int, chain_hash: str, published: str
) -> str:
    message = f"{position}|{prediction_id}|{chain_hash}|{published}".encode()
    return hmac.new(key.checkpoint, message, hashlib.sha256).hexdigest()


async def _head(conn: AsyncConnection[Any]) -> tuple[int, int | None, str]:
    """(position, prediction id, link) of the chain head; the purge anchor when empty."""
    cur = await conn.execute(
        "SELECT position, prediction_id, chain_hash FROM audit_chain ORDER BY position DESC LIMIT 1"
    )
    row = await cur.fetchone()
    if row is not None:
        return int(row[0]), int(row[1]), str(row[2])
    cur = await conn.execute(
        "SELECT up_to_position, up_to_prediction_id, anchor_hash FROM purge_log "
        "WHERE up_to_position IS NOT NULL ORDER BY id DESC LIMIT 1"
    )
    anchor = await cur.fetchone()
    if anchor is not None:
        return int(anchor[0]), int(anchor[1]), str(anchor[2])
    return 0, None, GENESIS


# The next batch: the queue in id order, each entry looked up in the trail and in the chain
# by one index probe, until ``limit`` rows are found. Its cost follows the batch, not the
# trail: left to itself the planner merges the queue with ``predictions`` and with
# ``audit_chain`` from their first row, i.e. reads every row sealed so far for every batch
# (sealing a 9 M backlog became quadratic). ``OFFSET 0`` keeps both sub-queries from being
# turned into joins, so they stay index probes driven by the queue. Queue entries already
# sealed, or whose prediction is gone, are skipped as before.
PENDING_SQL = (
    "SELECT q.prediction_id, p.record_mac FROM audit_pending q "
    "CROSS JOIN LATERAL (SELECT p.record_mac FROM predictions p "
    "WHERE p.id = q.prediction_id OFFSET 0) p "
    "WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.prediction_id = q.prediction_id "
    "OFFSET 0) "
    "ORDER BY q.prediction_id LIMIT %s"
)


async def seal(
    conn: AsyncConnection[Any], key: AuditKey, *, limit: int = 5000, wait: bool = False
) -> tuple[int, Checkpoint | None]:
    """Seal up to ``limit`` committed, unsealed predictions; return how many and the new head.

    With ``wait`` false (the background sealer), a sealer already running elsewhere makes
    this one return at once; ``attrition audit seal`` waits for it.
    """
    async with conn.transaction():
        if wait:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
        else:
            cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_ID,))
            got = await cur.fetchone()
            if not got or not got[0]:
                return 0, None
        # Read committed: this statement's snapshot is taken after the lock, so it sees the
        # links of the previous sealer.
        position, _, previous = await _head(conn)
        cur = await conn.execute(PENDING_SQL, (limit,))
        rows = await cur.fetchall()
        if not rows:
            return 0, None
        macs = {pid: mac for pid, mac in rows}
        legacy = [pid for pid, mac in rows if mac is None]
        if legacy:
            # Rows written before record MACs existed: MAC'd now, from what is stored.
            macs.update(await _macs_of(conn, key, legacy))
        positions: list[int] = []
        predictions: list[int] = []
        record_macs: list[str] = []
        links: list[str] = []
        for index, (pid, _) in enumerate(rows):
            if index and index % SLICE == 0:
                await asyncio.sleep(0)  # hand the event loop back between slices
            position += 1
            previous = link(key, previous, position, pid, macs[pid])
            positions.append(position)
            predictions.append(pid)
            record_macs.append(macs[pid])
            links.append(previous)
        await conn.execute(
            "SELECT audit_append(%s::bigint[], %s::bigint[], %s::text[], %s::text[])",
            (_ints(positions), _ints(predictions), _hex(record_macs), _hex(links)),
        )
        return len(rows), Checkpoint.sign(key, position, predictions[-1], previous)


_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def _ints(values: list[int]) -> str:
    # An array literal: psycopg's list dumper spent about 1 µs per element in Python, most of
    # the sealer's own CPU (4 arrays of up to 1,000 elements per transaction).
    return "{" + ",".join(map(str, values)) + "}"


def _hex(values: list[str]) -> str | list[str]:
    """Hex digests as an array literal; anything else (a MAC the database holds is not
    trusted to be one) goes through psycopg's own quoting."""
    if all(map(_HEX_DIGEST.fullmatch, values)):
        return "{" + ",".join(values) + "}"
    return values


async def seal_pending(
    conn: AsyncConnection[Any], key: AuditKey, *, limit: int = 5000, pause_s: float = 0.0
) -> tuple[int, Checkpoint | None]:
    """Seal everything pending, ``limit`` per transaction; how many and the last head.

    The background sealer's round: one batch per round, every few seconds, could not keep up
    with a sustained load (the queue only grew); batches follow one another until one comes
    back short, ``pause_s`` apart (PostgreSQL serves the predictions in between instead of
    appending one long run of links). Stops at once if another sealer holds the lock.
    """
    total, last = 0, None
    while True:
        sealed, checkpoint = await seal(conn, key, limit=limit)
        total += sealed
        last = checkpoint or last
        if sealed < limit:
            return total, last
        if pause_s:
            await asyncio.sleep(pause_s)


async def _macs_of(conn: AsyncConnection[Any], key: AuditKey, ids: Sequence[int]) -> dict[int, str]:
    async with conn.cursor() as cur:
        set_json_loads(orjson.loads, cur)
        await cur.execute(RECORD_SQL + "WHERE p.id = ANY(%s)", (list(ids),))
        return {row[0]: record_mac(key, row[2:]) for row in await cur.fetchall()}


async def requeue(conn: AsyncConnection[Any]) -> int:
    """Queue again every prediction neither sealed nor queued (the owner's repair path)."""
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO audit_pending (prediction_id) SELECT p.id FROM predictions p "
            "WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.prediction_id = p.id) "
            "ON CONFLICT DO NOTHING"
        )
        return max(cur.rowcount, 0)


async def current_checkpoint(conn: AsyncConnection[Any], key: AuditKey) -> Checkpoint | None:
    """The chain head as it is now, signed (None before the first seal)."""
    position, prediction_id, chain_hash = await _head(conn)
    if prediction_id is None:
        return None
    return Checkpoint.sign(key, position, prediction_id, chain_hash)


LATEST = "checkpoint.json"
HISTORY = "checkpoints.jsonl"


def publish(checkpoint: Checkpoint, directory: Path | None) -> None:
    """Log the checkpoint and write it under ``directory`` (latest + append-only history)."""
    line = json.dumps(checkpoint.as_dict(), sort_keys=True)
    log.info("point de contrôle de la trace d'audit : %s", line)
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / HISTORY).open("a", encoding="utf-8") as history:
        history.write(line + "\n")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(line + "\n")
        os.replace(tmp, directory / LATEST)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_checkpoints(paths: Iterable[Path]) -> list[Checkpoint]:
    """Checkpoints from files or folders (one JSON object per line); bad lines skipped."""
    found: list[Checkpoint] = []
    seen: set[Checkpoint] = set()
    for path in paths:
        candidates = [path / LATEST, path / HISTORY] if path.is_dir() else [path]
        for file in candidates:
            if not file.is_file():
                continue
            for text in file.read_text(encoding="utf-8").splitlines():
                if not text.strip():
                    continue
                try:
                    checkpoint = Checkpoint(**json.loads(text))
                except (TypeError, ValueError):
                    log.warning("ligne de point de contrôle illisible dans %s", file)
                    continue
                if checkpoint not in seen:  # the latest file repeats the history's last line
                    seen.add(checkpoint)
                    found.append(checkpoint)
    return found
