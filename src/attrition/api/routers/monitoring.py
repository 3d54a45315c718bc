"""Supervision: Prometheus metrics and the drift of recent inputs against the training data."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from starlette.responses import Response

from attrition.api.deps import Auditeur, PoolDep, RuntimeDep, api_key_header, bearer, current_client
from attrition.api.responses import ERRORS, FastJSONResponse
from attrition.api.schemas import IsoDateTime, PerformanceResponse, Problem
from attrition.errors import PermissionDeniedError, ValidationError
from attrition.monitoring.drift import DEFAULT_WINDOW, drift_report
from attrition.monitoring.performance import DEFAULT_HORIZON_DAYS, performance_report

router = APIRouter(tags=["supervision"])
log = logging.getLogger(__name__)

#: Roles that may read /metrics in production (open in dev and test).
METRICS_ROLES = ("admin", "auditeur")


async def metrics_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_key: Annotated[str | None, Security(api_key_header)],
) -> None:
    """In production, /metrics needs an admin or auditeur key (same authenticator as the API)."""
    if not request.app.state.settings.is_prod:
        return
    client = await current_client(request, credentials, header_key)
    if client.role not in METRICS_ROLES:
        raise PermissionDeniedError(
            f"Le rôle « {client.role} » ne permet pas de lire les métriques (rôles autorisés : "
            f"{', '.join(METRICS_ROLES)})."
        )


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(metrics_access)],
    responses={
        200: {
            "content": {"text/plain": {}},
            "description": "Métriques au format d'exposition Prometheus (texte).",
        },
        401: {"model": Problem, "description": "En production : clé API manquante ou invalide."},
        403: {"model": Problem, "description": "En production : rôle ni admin ni auditeur."},
    },
    summary="Métriques Prometheus",
)
async def read_metrics(request: Request) -> Response:
    """Rôles : aucun en développement et en test ; `admin` ou `auditeur` en production.

    Requêtes et latences par route et statut, prédictions par décision et niveau de risque,
    version du modèle en service, usage du pool de connexions. Liste : docs/monitoring.md.
    """
    metrics = request.app.state.metrics
    if metrics.performance_stale():
        # One cheap query at most once a minute; a scrape never fails for it.
        try:
            async with request.app.state.pool.connection(timeout=1.0) as conn:
                metrics.observe_performance(await performance_report(conn))
        except Exception:
            log.warning("performance réalisée non rafraîchie", exc_info=True)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


class DriftBin(BaseModel):
    libelle: str = Field(description="Classe : intervalle (numérique) ou valeur.")
    reference: float = Field(description="Part des données d'entraînement dans la classe.")
    recent: float = Field(description="Part des entrées récentes dans la classe.")


class FeatureDriftInfo(BaseModel):
    variable: str
    libelle: str
    type: str = Field(description="numérique, catégorie ou booléen.")
    psi: float = Field(description="Indice de stabilité de la population.")
    statut: str = Field(
        description="stable (< 0,1), a_surveiller (0,1 à 0,25), action_requise (≥ 0,25) ou "
        "donnees_insuffisantes."
    )
    hors_domaine: float = Field(
        description="Part des entrées récentes hors du domaine d'entraînement (valeur sous le "
        "minimum ou au-dessus du maximum, catégorie jamais vue)."
    )
    classes: list[DriftBin]


class PositiveRateInfo(BaseModel):
    reference: float | None = Field(
        description="Part des employés d'entraînement signalés par le modèle actif (≥ seuil)."
    )
    recent: float | None = Field(description="Part des prédictions récentes « depart ».")
    psi: float | None
    statut: str
    taux_depart_observe: float = Field(
        description="Taux de départ réel des données d'entraînement, pour comparaison."
    )
    reference_definition: str


class DriftResponse(BaseModel):
    """La dérive des entrées récentes par rapport aux données d'entraînement."""

    depuis: datetime | None
    jusqu_a: datetime | None
    n_reference: int = Field(description="Employés des données d'entraînement.")
    n_recent: int = Field(description="Entrées reçues sur la période.")
    model_version: str | None
    seuil: float | None
    statut: str = Field(description="Le pire statut des variables et du taux de positifs.")
    libelle_statut: str
    message: str = Field(description="Ce que le statut signifie et ce qu'il faut faire.")
    taux_positifs: PositiveRateInfo
    variables: list[FeatureDriftInfo] = Field(description="Par PSI décroissant.")


@router.get(
    "/v1/monitoring/drift",
    response_model=DriftResponse,
    responses={
        **ERRORS,
        422: {"model": Problem, "description": "Période invalide."},
        503: {"model": Problem, "description": "Base de données indisponible."},
    },
    summary="Mesurer la dérive des entrées récentes",
)
async def read_drift(
    client: Auditeur,
    pool: PoolDep,
    runtime: RuntimeDep,
    depuis: Annotated[
        IsoDateTime | None,
        Query(description="Début de la période (incluse), ISO 8601 ; défaut : il y a 30 jours."),
    ] = None,
    jusqu_a: Annotated[
        IsoDateTime | None, Query(description="Fin de la période (exclue), ISO 8601.")
    ] = None,
) -> Any:
    """Rôles : `auditeur`, `admin`.

    Compare, variable par variable, les entrées reçues sur la période aux données
    d'entraînement (vue `employee_features`) : indice de stabilité de la population (PSI :
    déciles d'entraînement pour les nombres, valeurs pour les catégories), part des entrées
    hors du domaine d'entraînement, et taux de prédictions positives comparé à celui du
    modèle actif sur les données d'entraînement. PSI < 0,1 : stable ; de 0,1 à 0,25 : à
    surveiller ; ≥ 0,25 : action requise (protocole de réentraînement de la fiche du modèle).
    """
    since, until = drift_window(depuis, jusqu_a)
    async with pool.connection() as conn:
        report = await drift_report(conn, since=since, until=until, model=runtime.current)
    return FastJSONResponse(report.as_dict())


@router.get(
    "/v1/monitoring/performance",
    response_model=PerformanceResponse,
    responses={
        **ERRORS,
        503: {"model": Problem, "description": "Base de données indisponible."},
    },
    summary="Comparer les prédictions passées aux départs constatés",
)
async def read_performance(
    request: Request,
    client: Auditeur,
    pool: PoolDep,
    horizon_jours: Annotated[
        int, Query(ge=30, le=1095, description="Horizon de la prédiction, en jours.")
    ] = DEFAULT_HORIZON_DAYS,
) -> Any:
    """Rôles : `auditeur`, `admin`.

    Par version du modèle, la première prédiction de chaque employé identifié est comparée à
    ce que les RH ont constaté (`POST /v1/employees/{id}/issue`) : parti dans l'horizon, ou
    encore présent à son terme. Précision des signalements, rappel, taux observé contre
    probabilité moyenne prédite, et statut (`reentrainer` selon les seuils de la fiche du
    modèle). Les jauges Prometheus `attrition_realized_*` reprennent le dernier calcul.
    """
    async with pool.connection() as conn:
        report = await performance_report(conn, horizon_days=horizon_jours)
    request.app.state.metrics.observe_performance(report)
    return FastJSONResponse(report.as_dict())


def drift_window(
    since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime | None]:
    """The period to compare, with UTC for naive dates; ValidationError if it is empty."""
    since = since or datetime.now(UTC) - DEFAULT_WINDOW
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    if until is not None:
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
        if until <= since:
            raise ValidationError(
                "Période vide : « jusqu_a » doit être postérieure à « depuis ».",
            )
    return since, until
