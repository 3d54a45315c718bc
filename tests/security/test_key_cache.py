"""The verified-key cache: no database trip per request, revocation effective within its TTL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from attrition.config import Settings
from attrition.db.engine import Database, libpq_conninfo
from attrition.errors import AuthenticationError
from attrition.security.clients import KEY_CACHE_TTL_S, Authenticator
from attrition.security.store import create_key, revoke_key


def _authenticator(pool: AsyncConnectionPool[Any], settings: Settings, ttl: float) -> Authenticator:
    return Authenticator(
        pool,
        settings.secret_key.get_secret_value(),
        rate_per_minute=1_000_000,
        failures_per_minute=1_000_000,
        cache_ttl_s=ttl,
    )


def test_revocation_by_another_process_is_refused_after_the_cache_delay(
    database: Database, settings: Settings
) -> None:
    """Revoked elsewhere (the CLI, another replica): accepted at most ``cache_ttl_s`` more."""
    created = create_key(database, settings, name="cache-ttl", role="predicteur")
    ttl = 0.5

    async def main() -> tuple[str, str, str]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            libpq_conninfo(database.app_url), min_size=1, max_size=2, open=False
        )
        await pool.open()
        try:
            auth = _authenticator(pool, settings, ttl)
            first = await auth.authenticate(created.key, "127.0.0.1")
            revoked_at = time.monotonic()
            await asyncio.to_thread(revoke_key, database, first.key_id)
            # Within the delay the cached verification still answers...
            during = await auth.authenticate(created.key, "127.0.0.1")
            assert time.monotonic() - revoked_at < ttl
            await asyncio.sleep(ttl + 0.1)
            # ...after it, the key is read again and refused.
            with pytest.raises(AuthenticationError) as refused:
                await auth.authenticate(created.key, "127.0.0.1")
            return first.key_id, during.key_id, refused.value.message
        finally:
            await pool.close()

    first, during, message = asyncio.run(main())
    assert first == during
    assert message == "Clé API révoquée."


def test_verified_keys_are_served_from_the_cache(database: Database, settings: Settings) -> None:
    """Within the TTL, authenticating again reads no row: the key is found even when the
    pool cannot lend a connection."""
    created = create_key(database, settings, name="cache-hit", role="predicteur")

    async def main() -> str:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            libpq_conninfo(database.app_url), min_size=1, max_size=1, timeout=0.2, open=False
        )
        await pool.open()
        try:
            auth = _authenticator(pool, settings, 60.0)
            await auth.authenticate(created.key, "127.0.0.1")
            async with pool.connection():  # the only connection is taken
                client = await auth.authenticate(created.key, "127.0.0.1")
            return client.name
        finally:
            await pool.close()

    assert asyncio.run(main()) == "cache-hit"


def test_a_verified_key_is_not_hashed_again_within_the_delay(
    database: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key's HMAC is computed once per cache entry; a different or altered key is still
    checked in full, and a key invalidated in this process is checked again."""
    from attrition.security import clients

    created = create_key(database, settings, name="cache-verified", role="predicteur")
    checks: list[str] = []
    original = clients.verify_key

    def counting(secret: str, full: str, stored: bytes) -> bool:
        checks.append(full)
        return original(secret, full, stored)

    monkeypatch.setattr(clients, "verify_key", counting)

    async def main() -> str:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            libpq_conninfo(database.app_url), min_size=1, max_size=2, open=False
        )
        await pool.open()
        try:
            auth = _authenticator(pool, settings, 60.0)
            for _ in range(3):
                await auth.authenticate(created.key, "127.0.0.1")
            assert len(checks) == 1
            altered = created.key[:-1] + ("A" if created.key[-1] != "A" else "B")
            with pytest.raises(AuthenticationError):
                await auth.authenticate(altered, "127.0.0.1")
            auth.invalidate(created.key_id)
            client = await auth.authenticate(created.key, "127.0.0.1")
            assert len(checks) == 2
            return client.name
        finally:
            await pool.close()

    assert asyncio.run(main()) == "cache-verified"


def test_default_delay_is_the_documented_one() -> None:
    assert KEY_CACHE_TTL_S == 5.0
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "exploitation.md").read_text(encoding="utf-8")
    assert "cache 5 s" in text
