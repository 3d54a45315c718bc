"""Liveness and readiness: /health never touches the database, /ready always does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from attrition import __version__
from attrition.api.deps import PoolDep, RuntimeDep
from attrition.api.responses import FastJSONResponse
from attrition.api.schemas import Health, Readiness

router = APIRouter(tags=["santé"])


EPHEMERAL_WARNING = (
    "Base de données non persistante (démonstration) : les données, le modèle et la piste "
    "d'audit sont perdus à chaque redémarrage."
)


@router.get("/health", response_model=Health, summary="Vivacité : le processus répond")
async def read_health(request: Request) -> dict[str, Any]:
    """Répond 200 tant que le processus est vivant, sans consulter la base de données."""
    database = getattr(request.app.state, "database", None)
    persistent = None if database is None else bool(database.persistent)
    return {
        "statut": "ok",
        "version": __version__,
        "base_persistante": persistent,
        "avertissement": EPHEMERAL_WARNING if persistent is False else None,
    }


# Load balancers and uptime probes often use HEAD: same answer, no body (not in the schema).
router.head("/health", include_in_schema=False)(read_health)


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


router.head("/ready", include_in_schema=False)(read_readiness)
