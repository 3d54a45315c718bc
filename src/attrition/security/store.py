"""API key management, written once: create, import, list, revoke.

The rules (role names, expiry, keyed hash) live in :class:`KeyStore`, which works on any
async psycopg connection: the API's pool for ``/v1/keys``, an owner connection for the
command line and the start-up sequence, through the synchronous helpers at the bottom.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from psycopg import AsyncConnection

from attrition.config import Settings
from attrition.db import keys as repo
from attrition.db.engine import Database, libpq_conninfo
from attrition.db.keys import KeyRecord
from attrition.errors import NotFoundError, ValidationError
from attrition.security.keys import generate_key, hash_key, parse_key

#: The values of the ``api_role`` type (``db.models.Role``; not imported: API workers stay
#: free of SQLAlchemy).
ROLES = ("admin", "predicteur", "auditeur", "rh")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CreatedKey:
    """A new key: its record, and the full key, shown once."""

    record: KeyRecord
    key: str

    @property
    def key_id(self) -> str:
        return self.record.key_id

    @property
    def role(self) -> str:
        return self.record.role


def _role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"Rôle inconnu « {role} » (rôles : {', '.join(ROLES)}).")
    return role


class KeyStore:
    """The key rules, bound to the secret that keys the stored hashes."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    async def create(
        self,
        conn: AsyncConnection[Any],
        *,
        name: str,
        role: str,
        expires_in: timedelta | None = None,
    ) -> CreatedKey:
        key = generate_key()
        record = await repo.insert_key(
            conn,
            key_id=key.key_id,
            name=name,
            role=_role(role),
            key_hash=hash_key(self._secret, key.full),
            expires_at=datetime.now(UTC) + expires_in if expires_in else None,
        )
        return CreatedKey(record=record, key=key.full)

    async def import_key(
        self, conn: AsyncConnection[Any], raw: str, *, name: str, role: str
    ) -> bool:
        """Register a key given by the operator (ATTRITION_ADMIN_KEY); True if it was new."""
        parsed = parse_key(raw)
        if await repo.key_exists(conn, parsed.key_id):
            return False
        await repo.insert_key(
            conn,
            key_id=parsed.key_id,
            name=name,
            role=_role(role),
            key_hash=hash_key(self._secret, parsed.full),
            expires_at=None,
        )
        return True

    @staticmethod
    async def all(conn: AsyncConnection[Any]) -> list[KeyRecord]:
        return await repo.list_keys(conn)

    @staticmethod
    async def revoke(conn: AsyncConnection[Any], key_id: str) -> KeyRecord:
        record = await repo.revoke_key(conn, key_id)
        if record is None:
            raise NotFoundError(f"Clé « {key_id} » inconnue.")
        return record


# ---- the owner's side (command line, start-up, tests): one connection, one transaction --------


def _as_owner(db: Database, work: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
    async def run() -> T:
        # Leaving the block commits (or rolls back on an error).
        async with await AsyncConnection.connect(libpq_conninfo(db.owner_url)) as conn:
            return await work(conn)

    return asyncio.run(run())


def _store(settings: Settings) -> KeyStore:
    return KeyStore(settings.secret_key.get_secret_value())


def create_key(
    db: Database, settings: Settings, *, name: str, role: str, expires_in: timedelta | None = None
) -> CreatedKey:
    return _as_owner(
        db, lambda c: _store(settings).create(c, name=name, role=role, expires_in=expires_in)
    )


def import_key(db: Database, settings: Settings, raw: str, name: str, role: str) -> bool:
    return _as_owner(db, lambda c: _store(settings).import_key(c, raw, name=name, role=role))


def list_keys(db: Database) -> list[KeyRecord]:
    return _as_owner(db, KeyStore.all)


def revoke_key(db: Database, key_id: str) -> KeyRecord:
    return _as_owner(db, lambda c: KeyStore.revoke(c, key_id))


def set_daily_quota(db: Database, key_id: str, quota: int | None) -> None:
    """Set the key's daily ceiling of predictions (``None``: the server's default)."""
    if quota is not None and quota <= 0:
        raise ValidationError("Le quota journalier doit être un entier strictement positif.")

    async def work(conn: AsyncConnection[Any]) -> None:
        if not await repo.set_daily_quota(conn, key_id, quota):
            raise NotFoundError(f"Clé « {key_id} » inconnue.")

    _as_owner(db, work)


def daily_quotas(db: Database) -> dict[str, int | None]:
    """Each key's own daily ceiling (``None``: the server's default), by public id."""
    return _as_owner(db, repo.daily_quotas)
