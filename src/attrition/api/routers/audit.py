"""The audit chain's head, signed, for auditors who keep it outside the database."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Request
from psycopg_pool import PoolTimeout

from attrition.api.deps import Auditeur, PoolDep
from attrition.api.responses import FastJSONResponse
from attrition.api.routers.predictions import ERRORS
from attrition.api.routing import FastJSONRoute
from attrition.api.schemas import AuditCheckpoint, Problem
from attrition.db import chain
from attrition.errors import DatabaseUnavailableError, NotFoundError

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=FastJSONRoute)


@router.get(
    "/checkpoint",
    response_model=AuditCheckpoint,
    responses={
        **ERRORS,
        404: {"model": Problem, "description": "Rien n'est encore scellé."},
        503: {"model": Problem, "description": "Base de données indisponible."},
    },
    summary="Point de contrôle signé de la chaîne d'audit",
)
async def read_checkpoint(request: Request, client: Auditeur, pool: PoolDep) -> Any:
    """Rôles : `auditeur`, `admin`.

    La tête de la chaîne (position, dernière prédiction scellée, lien) signée avec la clé
    d'audit. Conservez-la hors de la base : `attrition audit verify --checkpoint FICHIER`
    détecte ensuite toute suppression des derniers enregistrements.
    """
    try:
        async with pool.connection() as conn:
            checkpoint = await chain.current_checkpoint(conn, request.app.state.audit_key)
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailableError("La base de données est indisponible.") from exc
    if checkpoint is None:
        raise NotFoundError("Aucune prédiction n'est encore scellée.")
    return FastJSONResponse(checkpoint.as_dict())
