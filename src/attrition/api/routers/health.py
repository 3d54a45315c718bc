"""Liveness and readiness: /health never touches the database, /ready always does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from attrition.api.deps import PoolDep, RuntimeDep
from attrition.api.responses import FastJSONResponse
from attrition.api.schemas import Health, Readiness

router = APIRouter(tags=["santé"])


@router.get("/health", response_model=Health, summary="Vivacité : le processus répond")
async def read_health() -> dict[str, str]:
    """Répond 200 tant que le processus est vivant, sans consulter la base de données."""
    return {"statut": "ok"}


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Disponibilité : base joignable et modèle chargé",
    responses={503: {"model": Readiness, "description": "Service pas prêt (raison donnée)."}},
)
async def read_readiness(request: Request, pool: PoolDep, runtime: RuntimeDep) -> Any:
    """Vérifie la base (une requête) et le modèle actif (chargé, somme SHA-256 vérifiée)."""
    database = request.app.state.database
    body: dict[str, Any] = {
        "statut": "pret",
        "base_de_donnees": database.description,
        "base_persistante": database.persistent,
        "modele": runtime.version,
        "raison": None,
    }
    try:
        async with pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")
            await runtime.refresh(conn)
    except Exception:
        body.update(statut="indisponible", raison="base de données injoignable")
        return FastJSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    if not runtime.ready:
        body.update(statut="indisponible", modele=None, raison=runtime.reason)
        return FastJSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    body["modele"] = runtime.version
    return body
