"""The active model: version, metrics, threshold, expected features."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from attrition.api.deps import Lecteur, RuntimeDep
from attrition.api.responses import ERRORS, FastJSONResponse
from attrition.api.routing import FastJSONRoute
from attrition.api.schemas import ModelInfo, Problem, feature_catalogue
from attrition.model.summary import summary_metrics

router = APIRouter(prefix="/v1", tags=["modèle"], route_class=FastJSONRoute)


@router.get(
    "/model",
    response_model=ModelInfo,
    responses={**ERRORS, 503: {"model": Problem, "description": "Aucun modèle prêt."}},
    summary="Décrire le modèle actif",
)
async def read_model(client: Lecteur, runtime: RuntimeDep) -> Any:
    """Rôles : tous. Version active, métriques de validation croisée, seuil et variables."""
    model = runtime.require()
    return FastJSONResponse(
        {
            "version": model.version,
            "algorithme": model.algorithm,
            "seuil": model.threshold,
            "critere_seuil": model.threshold_criterion,
            "metriques": summary_metrics(model.metrics),
            "sha256": model.sha256,
            "cree_le": model.created_at,
            "variables": [f.model_dump() for f in feature_catalogue()],
        }
    )
