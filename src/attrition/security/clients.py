"""Authenticating API clients and limiting their rate, without a database trip per request.

Verified keys are cached for a few seconds (revocation reaches every process within
``cache_ttl_s``); ``last_used_at`` is written at most once a minute per key. Rate limits are
token buckets per key, and a separate bucket of failed authentications per address and per
key id: only failures take from it, and a full one turns further *failures* into 429, never
a valid key (behind a proxy every client shares an address; one bad client must not lock
the others out). A valid key is governed by its own quotas only: requests per minute, and
predictions per minute and per UTC day (:meth:`Authenticator.reserve`). The per-minute counts
are shared by the workers of one server (:mod:`attrition.security.limits`); the daily ones are
kept in PostgreSQL, global to every replica, and taken in the transaction that records the
predictions (:mod:`attrition.db.usage`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from attrition.db.usage import Take
from attrition.errors import AuthenticationError, RateLimitedError
from attrition.security.keys import parse_key, verify_key
from attrition.security.limits import Bucket, bucket

_DAY_S = 86_400
#: How long a verified key is trusted without reading its row again: a revocation made
#: elsewhere (the CLI, another process or replica) is refused everywhere within this delay
#: (docs/exploitation.md); a revocation through the API is refused at once by its process.
KEY_CACHE_TTL_S = 5.0


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
    daily_quota: int | None = None
    verified: str | None = None  # the presented key that matched key_hash, once checked


@dataclass(frozen=True, slots=True)
class Quota:
    """What is left of a key's prediction quotas, as ``RateLimit-*`` headers say it.

    Field names of draft-ietf-httpapi-ratelimit-headers-06 (RateLimit-Limit, -Remaining,
    -Reset and RateLimit-Policy); the window reported is the one with the least left.
    """

    limit: int
    remaining: int
    reset_s: int
    policy: str

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(max(0, self.reset_s)),
            "RateLimit-Policy": self.policy,
        }


@dataclass(frozen=True, slots=True)
class Charge:
    """Predictions taken from a key's per-minute quota; ``take`` is their count of the day.

    The day's count is taken by the transaction that records the predictions (``take``);
    :meth:`paid` then gives the ``RateLimit-*`` headers, :meth:`refused` the 429.
    """

    take: Take
    per_minute: int
    left: float
    to_midnight: int
    policy: str
    bucket: Bucket
    now: float | None

    def paid(self, used: int | None) -> Quota:
        """The quota left once the write took the day's count (``used``: after it)."""
        ceiling = self.take.ceiling
        if used is not None and ceiling - used < self.left:
            return Quota(ceiling, ceiling - used, self.to_midnight, self.policy)
        refill_s = math.ceil((self.per_minute - self.left) * 60.0 / self.per_minute)
        return Quota(self.per_minute, int(self.left), refill_s, self.policy)

    def give_back(self) -> None:
        """Return the minute's tokens: nothing was predicted (a replay, a refusal)."""
        self.bucket.consume(self.take.key, -self.take.amount, self.now)

    def refused(self, used: int) -> RateLimitedError:
        """The 429 of a write refused by the day's quota (``used``: the count as it is)."""
        self.give_back()
        ceiling, count = self.take.ceiling, self.take.amount
        return RateLimitedError(
            f"Quota journalier de prédictions atteint pour cette clé ({ceiling} par jour, "
            f"{used} déjà faites ; cette requête en demande {count}) : réessayez demain "
            "ou demandez à un administrateur de relever le quota.",
            retry_after=self.to_midnight,
            headers=Quota(ceiling, ceiling - used, self.to_midnight, self.policy).headers(),
        )


class Authenticator:
    """Turns a presented key into a :class:`Client`, or raises AuthenticationError."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        secret: str,
        *,
        rate_per_minute: int,
        failures_per_minute: int,
        predictions_per_minute: int = 6_000,
        predictions_per_day: int = 100_000,
        cache_ttl_s: float = KEY_CACHE_TTL_S,
    ) -> None:
        self.pool = pool
        self.secret = secret
        self.cache_ttl_s = cache_ttl_s
        self.predictions_per_day = predictions_per_day
        self._cache: dict[str, _Cached] = {}
        self._verified: dict[str, str] = {}  # presented key -> its key id, once verified
        self._last_used_written: dict[int, float] = {}
        # Per server, shared by its workers when it has several (attrition.security.limits).
        self.requests = bucket("requetes", rate_per_minute)
        self.failures = bucket("echecs", failures_per_minute)
        self.predictions = bucket("predictions", predictions_per_minute)

    def fail(
        self, ip: str, key_id: str | None, exc: AuthenticationError
    ) -> AuthenticationError | RateLimitedError:
        """Count a failure against the address and the key id; 429 once either is spent.

        Only failures are counted and only failures are refused: a valid key presented from
        the same address (the same proxy) still passes.
        """
        wait = self.failures.take(f"ip:{ip}")
        if key_id is not None:
            wait = max(wait, self.failures.take(f"id:{key_id}"))
        if wait > 0:
            return RateLimitedError(
                "Trop d'échecs d'authentification depuis cette adresse ou pour cette clé : "
                "réessayez plus tard avec une clé valide.",
                retry_after=max(1, math.ceil(wait)),
            )
        return exc

    async def authenticate(self, raw: str | None, ip: str) -> Client:
        if not raw:
            raise self.fail(
                ip,
                None,
                AuthenticationError(
                    "Clé API manquante : envoyez « Authorization: Bearer <clé> » ou « X-API-Key »."
                ),
            )
        entry = self._verified_entry(raw)
        if entry is None:
            try:
                parsed = parse_key(raw)
            except AuthenticationError as exc:
                raise self.fail(ip, None, exc) from None
            entry = await self._lookup(parsed.key_id)
            if entry is None or not verify_key(self.secret, parsed.full, entry.key_hash):
                raise self.fail(ip, parsed.key_id, AuthenticationError("Clé API invalide."))
            entry.verified = raw
            if len(self._verified) > 10_000:  # only keys that matched their hash get here
                self._verified.clear()
            self._verified[raw] = entry.client.key_id
        key_id = entry.client.key_id
        if entry.revoked:
            raise self.fail(ip, key_id, AuthenticationError("Clé API révoquée."))
        if entry.expires_at is not None and entry.expires_at <= datetime.now(UTC):
            raise self.fail(ip, key_id, AuthenticationError("Clé API expirée."))
        wait = self.requests.take(f"key:{entry.client.id}")
        if wait > 0:
            raise RateLimitedError(
                "Limite de requêtes atteinte pour cette clé : réessayez plus tard.",
                retry_after=max(1, math.ceil(wait)),
            )
        await self._touch(entry.client.id)
        return entry.client

    def daily_quota(self, client: Client) -> int:
        cached = self._cache.get(client.key_id)
        if cached is not None and cached.daily_quota is not None:
            return cached.daily_quota
        return self.predictions_per_day

    def reserve(self, client: Client, count: int, now: float | None = None) -> Charge:
        """Take ``count`` predictions from the key's per-minute quota, or raise 429.

        The day's count is not taken here: the returned charge's ``take`` goes with the
        predictions' write (one transaction; see :mod:`attrition.db.usage`).
        """
        key = f"key:{client.id}"
        per_minute = int(self.predictions.rate)
        wait, left = self.predictions.consume(key, count, now)
        clock = time.time() if now is None else now
        day, into_day = divmod(int(clock), _DAY_S)
        ceiling = self.daily_quota(client)
        policy = f"{per_minute};w=60, {ceiling};w={_DAY_S}"
        if wait > 0:
            raise RateLimitedError(
                f"Quota de prédictions par minute atteint pour cette clé ({per_minute} par "
                f"minute ; cette requête en demande {count}) : réessayez plus tard.",
                retry_after=max(1, math.ceil(wait)),
                headers=Quota(per_minute, int(left), math.ceil(wait), policy).headers(),
            )
        take = Take("predictions", key, day, count, ceiling)
        return Charge(take, per_minute, left, _DAY_S - into_day, policy, self.predictions, now)

    def invalidate(self, key_id: str | None = None) -> None:
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.pop(key_id, None)

    def _verified_entry(self, raw: str) -> _Cached | None:
        """The cache entry ``raw`` was already checked against, while that entry is fresh.

        The key's HMAC is then not computed again: the same string matched the same stored
        hash. A new entry (after the delay, or after :meth:`invalidate`) is checked anew.
        """
        key_id = self._verified.get(raw)
        if key_id is None:
            return None
        entry = self._cache.get(key_id)
        if (
            entry is None
            or entry.verified != raw
            or time.monotonic() - entry.fetched >= self.cache_ttl_s
        ):
            return None
        return entry

    async def _lookup(self, key_id: str) -> _Cached | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached.fetched < self.cache_ttl_s:
            return cached
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id, key_id, name, role, key_hash, expires_at, revoked_at IS NOT NULL, "
                "daily_quota FROM api_keys WHERE key_id = %s",
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
            daily_quota=row[7],
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
