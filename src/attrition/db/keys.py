"""API key records, written and read with psycopg 3 (never the key, only its keyed hash).

Functions here never commit: the caller's connection or transaction does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

COLUMNS = ("key_id", "name", "role", "created_at", "expires_at", "last_used_at", "revoked_at")
_RETURNING = ", ".join(COLUMNS)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as it may be shown: never its secret nor its hash."""

    key_id: str
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def public(self) -> dict[str, Any]:
        return asdict(self)


def _record(row: tuple[Any, ...]) -> KeyRecord:
    values = dict(zip(COLUMNS, row, strict=True))
    return KeyRecord(**{**values, "role": str(values["role"])})


async def insert_key(
    conn: AsyncConnection[Any],
    *,
    key_id: str,
    name: str,
    role: str,
    key_hash: bytes,
    expires_at: datetime | None,
) -> KeyRecord:
    cur = await conn.execute(
        f"INSERT INTO api_keys (key_id, name, role, key_hash, expires_at) "  # noqa: S608
        f"VALUES (%s, %s, %s, %s, %s) RETURNING {_RETURNING}",
        (key_id, name, role, key_hash, expires_at),
    )
    row = await cur.fetchone()
    assert row is not None
    return _record(row)


async def key_exists(conn: AsyncConnection[Any], key_id: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM api_keys WHERE key_id = %s", (key_id,))
    return await cur.fetchone() is not None


async def list_keys(conn: AsyncConnection[Any]) -> list[KeyRecord]:
    cur = await conn.execute(f"SELECT {_RETURNING} FROM api_keys ORDER BY id")  # noqa: S608
    return [_record(row) for row in await cur.fetchall()]


async def revoke_key(conn: AsyncConnection[Any], key_id: str) -> KeyRecord | None:
    """Revoke (once: a second revocation keeps the first date); None if the key is unknown."""
    cur = await conn.execute(
        f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "  # noqa: S608
        f"WHERE key_id = %s RETURNING {_RETURNING}",
        (key_id,),
    )
    row = await cur.fetchone()
    return _record(row) if row is not None else None


async def set_daily_quota(conn: AsyncConnection[Any], key_id: str, quota: int | None) -> bool:
    """Set the key's daily ceiling of predictions (NULL: the server's default); False if unknown."""
    cur = await conn.execute(
        "UPDATE api_keys SET daily_quota = %s WHERE key_id = %s", (quota, key_id)
    )
    return cur.rowcount > 0


async def daily_quotas(conn: AsyncConnection[Any]) -> dict[str, int | None]:
    cur = await conn.execute("SELECT key_id, daily_quota FROM api_keys")
    return {str(key_id): quota for key_id, quota in await cur.fetchall()}
