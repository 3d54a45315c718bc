"""API key management (admin only). The key is shown once, at creation; only its hash is kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from attrition.api.deps import Admin, PoolDep, SettingsDep
from attrition.api.responses import FastJSONResponse
from attrition.api.routers.predictions import ERRORS
from attrition.api.routing import FastJSONRoute
from attrition.api.schemas import OptionalStrictInt, Problem
from attrition.errors import NotFoundError
from attrition.security.keys import generate_key, hash_key

router = APIRouter(prefix="/v1/keys", tags=["clés API"], route_class=FastJSONRoute)


class KeyCreateRequest(BaseModel):
    """Une nouvelle clé : un nom, un rôle, une durée de validité facultative."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w .@-]+$")
    role: Literal["admin", "predicteur", "auditeur", "rh"]
    expires_in_days: OptionalStrictInt = Field(default=None, ge=1, le=3650)


class KeyPublic(BaseModel):
    """Une clé telle qu'on peut la montrer : jamais son secret ni son empreinte."""

    key_id: str
    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="La clé, affichée une seule fois : conservez-la.")


COLUMNS = "key_id, name, role, created_at, expires_at, last_used_at, revoked_at"


def _public(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(
        zip(
            COLUMNS.split(", "),
            [str(row[2]) if i == 2 else v for i, v in enumerate(row)],
            strict=True,
        )
    )


@router.post(
    "",
    response_model=KeyCreated,
    status_code=201,
    responses={**ERRORS, 422: {"model": Problem, "description": "Entrée invalide."}},
    summary="Créer une clé API",
)
async def create_key(
    body: KeyCreateRequest, client: Admin, pool: PoolDep, settings: SettingsDep
) -> Any:
    """Rôle : `admin`. La clé n'est affichée qu'une fois ; seule son empreinte HMAC est stockée."""
    key = generate_key()
    expires = (
        datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    )
    digest = hash_key(settings.secret_key.get_secret_value(), key.full)
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"INSERT INTO api_keys (key_id, name, role, key_hash, expires_at) "  # noqa: S608
            f"VALUES (%s, %s, %s, %s, %s) RETURNING {COLUMNS}",
            (key.key_id, body.name, body.role, digest, expires),
        )
        row = await cur.fetchone()
    assert row is not None
    return FastJSONResponse({**_public(row), "key": key.full}, status_code=201)


@router.get("", response_model=list[KeyPublic], responses=ERRORS, summary="Lister les clés API")
async def list_keys(client: Admin, pool: PoolDep) -> Any:
    """Rôle : `admin`. Sans secret ni empreinte."""
    async with pool.connection() as conn:
        cur = await conn.execute(f"SELECT {COLUMNS} FROM api_keys ORDER BY id")  # noqa: S608
        rows = await cur.fetchall()
    return FastJSONResponse([_public(r) for r in rows])


@router.delete(
    "/{key_id}",
    response_model=KeyPublic,
    responses={**ERRORS, 404: {"model": Problem, "description": "Clé inconnue."}},
    summary="Révoquer une clé API",
)
async def revoke_key(
    key_id: Annotated[str, Path(pattern=r"^[0-9a-z]{8}$")],
    request: Request,
    client: Admin,
    pool: PoolDep,
) -> Any:
    """Rôle : `admin`. La clé est refusée partout dans les secondes qui suivent."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) "  # noqa: S608
            f"WHERE key_id = %s RETURNING {COLUMNS}",
            (key_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"Clé « {key_id} » inconnue.")
    request.app.state.authenticator.invalidate(key_id)
    return FastJSONResponse(_public(row))
