"""Idempotency keys: remember a request's response under the client's key, atomically.

The row is inserted in the same transaction as the predictions; the primary key
(api_key_id, key) makes a concurrent duplicate wait for the first transaction and then fail
with a unique violation, after which the caller replays the committed response.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb


def request_hash(route: str, body: bytes) -> str:
    """SHA-256 of the route and the canonical JSON body (key order and spacing ignored)."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(route.encode() + b"\n" + canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class Stored:
    request_hash: str
    response: dict[str, Any]


async def lookup(conn: AsyncConnection[Any], api_key_id: int, key: str) -> Stored | None:
    cur = await conn.execute(
        "SELECT request_hash, response FROM idempotency_keys "
        "WHERE api_key_id = %s AND key = %s AND expires_at > now()",
        (api_key_id, key),
    )
    row = await cur.fetchone()
    return None if row is None else Stored(request_hash=row[0], response=row[1])


async def remember(
    conn: AsyncConnection[Any], ctx: Any, body: dict[str, Any], ttl: timedelta
) -> None:
    """Store ``body`` under the context's key, replacing an expired entry (caller's transaction)."""
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE api_key_id = %s AND key = %s AND expires_at <= now()",
        (ctx.api_key_id, ctx.idempotency_key),
    )
    await conn.execute(
        "INSERT INTO idempotency_keys (api_key_id, key, request_hash, response, status, expires_at)"
        " VALUES (%s, %s, %s, %s, 201, now() + %s)",
        (
            ctx.api_key_id,
            ctx.idempotency_key,
            ctx.request_hash,
            Jsonb(orjson.loads(orjson.dumps(body))),
            ttl,
        ),
    )
