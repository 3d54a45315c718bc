"""API key management (admin only). The key is shown once, at creation; only its hash is kept."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from attrition.api.deps import Admin, PoolDep, SettingsDep
from attrition.api.responses import ERRORS, FastJSONResponse
from attrition.api.routing import FastJSONRoute
from attrition.api.schemas import OptionalStrictInt, Problem
from attrition.security.store import KeyStore

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
    expires_in = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    store = KeyStore(settings.secret_key.get_secret_value())
    async with pool.connection() as conn:
        created = await store.create(conn, name=body.name, role=body.role, expires_in=expires_in)
    return FastJSONResponse({**created.record.public(), "key": created.key}, status_code=201)


@router.get("", response_model=list[KeyPublic], responses=ERRORS, summary="Lister les clés API")
async def list_keys(client: Admin, pool: PoolDep) -> Any:
    """Rôle : `admin`. Sans secret ni empreinte."""
    async with pool.connection() as conn:
        records = await KeyStore.all(conn)
    return FastJSONResponse([r.public() for r in records])


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
        record = await KeyStore.revoke(conn, key_id)
    request.app.state.authenticator.invalidate(key_id)
    return FastJSONResponse(record.public())
