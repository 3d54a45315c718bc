"""Key records for the CLI and the start-up sequence (owner connection, SQLAlchemy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from attrition.config import Settings
from attrition.db.engine import Database
from attrition.db.models import ApiKey, Role
from attrition.errors import NotFoundError, ValidationError
from attrition.security.keys import generate_key, hash_key, parse_key


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key_id: str
    key: str
    role: str
    expires_at: datetime | None


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValidationError(f"Rôle inconnu « {role} » (rôles : {allowed}).") from None


def create_key(
    db: Database, settings: Settings, *, name: str, role: str, expires_in: timedelta | None = None
) -> CreatedKey:
    key = generate_key()
    expires = datetime.now(UTC) + expires_in if expires_in else None
    with Session(db.owner_engine()) as session, session.begin():
        session.add(
            ApiKey(
                key_id=key.key_id,
                name=name,
                role=_role(role),
                key_hash=hash_key(settings.secret_key.get_secret_value(), key.full),
                expires_at=expires,
            )
        )
    return CreatedKey(key_id=key.key_id, key=key.full, role=role, expires_at=expires)


def import_key(db: Database, settings: Settings, raw: str, name: str, role: str) -> bool:
    """Register a key given by the operator (ATTRITION_ADMIN_KEY); True if it was new."""
    parsed = parse_key(raw)
    with Session(db.owner_engine()) as session, session.begin():
        if session.scalar(select(ApiKey.id).where(ApiKey.key_id == parsed.key_id)):
            return False
        session.add(
            ApiKey(
                key_id=parsed.key_id,
                name=name,
                role=_role(role),
                key_hash=hash_key(settings.secret_key.get_secret_value(), parsed.full),
            )
        )
    return True


def list_keys(db: Database) -> list[ApiKey]:
    with Session(db.owner_engine()) as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(db: Database, key_id: str) -> None:
    with Session(db.owner_engine()) as session, session.begin():
        result = session.execute(
            update(ApiKey)
            .where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            exists = session.scalar(select(ApiKey.id).where(ApiKey.key_id == key_id))
            if exists is None:
                raise NotFoundError(f"Clé « {key_id} » inconnue.")


def set_daily_quota(db: Database, key_id: str, quota: int | None) -> None:
    """Set the key's daily ceiling of predictions (``None``: the server's default)."""
    if quota is not None and quota <= 0:
        raise ValidationError("Le quota journalier doit être un entier strictement positif.")
    with Session(db.owner_engine()) as session, session.begin():
        result = session.execute(
            update(ApiKey).where(ApiKey.key_id == key_id).values(daily_quota=quota)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFoundError(f"Clé « {key_id} » inconnue.")
