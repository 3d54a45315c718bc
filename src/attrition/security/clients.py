"""Authenticating API clients and limiting their rate, without a database trip per request.

Verified keys are cached for a few seconds (revocation reaches every process within
``cache_ttl_s``); ``last_used_at`` is written at most once a minute per key. Rate limits are
token buckets per key (per IP before authentication) and a separate bucket of failed
authentications per IP, which throttles brute force; with several workers the buckets are
shared by all of them (:mod:`attrition.security.limits`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from attrition.errors import AuthenticationError, RateLimitedError
from attrition.security.keys import parse_key, verify_key
from attrition.security.limits import bucket


@dataclass(frozen=True, slots=True)
class Client:
    """An authenticated caller."""

    id: int
    key_id: str
    name: str
    role: str


@dataclass(slots=True)
class _Cached:
    client: Client
    key_hash: bytes
    expires_at: datetime | None
    revoked: bool
    fetched: float


class Authenticator:
    """Turns a presented key into a :class:`Client`, or raises AuthenticationError."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        secret: str,
        *,
        rate_per_minute: int,
        failures_per_minute: int,
        cache_ttl_s: float = 5.0,
    ) -> None:
        self.pool = pool
        self.secret = secret
        self.cache_ttl_s = cache_ttl_s
        self._cache: dict[str, _Cached] = {}
        self._last_used_written: dict[int, float] = {}
        # Shared by the server's workers when it has several (attrition.security.limits).
        self.requests = bucket("requetes", rate_per_minute)
        self.failures = bucket("echecs", failures_per_minute)

    def check_ip(self, ip: str) -> None:
        """Refuse an IP that failed authentication too often (before any key work)."""
        wait = self.failures.peek_blocked(ip)
        if wait > 0:
            raise RateLimitedError(
                "Trop d'échecs d'authentification depuis cette adresse : réessayez plus tard.",
                retry_after=max(1, int(wait + 0.999)),
            )

    def fail(self, ip: str, exc: AuthenticationError) -> AuthenticationError:
        self.failures.take(ip)
        return exc

    async def authenticate(self, raw: str | None, ip: str) -> Client:
        self.check_ip(ip)
        if not raw:
            raise self.fail(
                ip,
                AuthenticationError(
                    "Clé API manquante : envoyez « Authorization: Bearer <clé> » ou « X-API-Key »."
                ),
            )
        try:
            parsed = parse_key(raw)
        except AuthenticationError as exc:
            raise self.fail(ip, exc) from None
        entry = await self._lookup(parsed.key_id)
        if entry is None or not verify_key(self.secret, parsed.full, entry.key_hash):
            raise self.fail(ip, AuthenticationError("Clé API invalide."))
        if entry.revoked:
            raise self.fail(ip, AuthenticationError("Clé API révoquée."))
        if entry.expires_at is not None and entry.expires_at <= datetime.now(UTC):
            raise self.fail(ip, AuthenticationError("Clé API expirée."))
        wait = self.requests.take(f"key:{entry.client.id}")
        if wait > 0:
            raise RateLimitedError(
                "Limite de requêtes atteinte pour cette clé : réessayez plus tard.",
                retry_after=max(1, int(wait + 0.999)),
            )
        await self._touch(entry.client.id)
        return entry.client

    def invalidate(self, key_id: str | None = None) -> None:
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.pop(key_id, None)

    async def _lookup(self, key_id: str) -> _Cached | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached.fetched < self.cache_ttl_s:
            return cached
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, key_id, name, role, key_hash, expires_at, revoked_at IS NOT NULL "
                "FROM api_keys WHERE key_id = %s",
                (key_id,),
            )
            row = await cur.fetchone()
        if row is None:
            self._cache.pop(key_id, None)
            return None
        entry = _Cached(
            client=Client(id=row[0], key_id=row[1], name=row[2], role=str(row[3])),
            key_hash=bytes(row[4]),
            expires_at=row[5],
            revoked=bool(row[6]),
            fetched=now,
        )
        self._cache[key_id] = entry
        return entry

    async def _touch(self, key_pk: int) -> None:
        now = time.monotonic()
        if now - self._last_used_written.get(key_pk, -1e9) < 60:
            return
        self._last_used_written[key_pk] = now
        try:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "UPDATE api_keys SET last_used_at = now() WHERE id = %s", (key_pk,)
                )
        except Exception:
            self._last_used_written.pop(key_pk, None)
