"""Prediction endpoints: score one employee, a batch, or a stored employee; read the trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request

from attrition.api.deps import KEY_SECURITY, Lecteur, PoolDep, PredicteurRapide
from attrition.api.responses import ERRORS, WRITE_ERRORS, FastJSONResponse
from attrition.api.routing import FastJSONRoute
from attrition.api.schemas import (
    BatchPredictionRequest,
    BatchPredictionResponse,
    IsoDateTime,
    Label,
    PredictionPage,
    PredictionRequest,
    PredictionResponse,
    Problem,
    RecordedPrediction,
)
from attrition.db import idempotency
from attrition.errors import ValidationError
from attrition.security.clients import Authenticator, Charge, Client
from attrition.services import records
from attrition.services.answers import SingleBody
from attrition.services.predictions import (
    Outcome,
    PredictionService,
    Render,
    RequestContext,
    ScoreItem,
)

router = APIRouter(prefix="/v1", tags=["prédictions"], route_class=FastJSONRoute)

#: What an ``Idempotency-Key`` may be: 1 to 255 visible ASCII characters.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"
IDEMPOTENCY_KEY_MAX = 255

IdempotencyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Clé d'idempotence (facultative) : une nouvelle tentative avec la même clé "
        "et le même corps renvoie la même prédiction sans rien écrire ; conservée 24 h.",
    ),
]


async def _context(
    request: Request, client_id: int, source: str, idempotency_key: str | None
) -> RequestContext:
    digest = None
    if idempotency_key is not None:
        digest = idempotency.request_hash(request.url.path, await request.body())
    return RequestContext(
        request_id=request.state.request_id,
        client_request_id=getattr(request.state, "client_request_id", None),
        api_key_id=client_id,
        source=source,
        idempotency_key=idempotency_key,
        request_hash=digest,
    )


#: One prediction's body: rendered while its record is written (services.predictions).
_single = SingleBody()


def _batch(outcomes: list[Outcome]) -> dict[str, Any]:
    return {
        "batch_id": outcomes[0].batch_id or "",
        "nombre": len(outcomes),
        "predictions": [o.as_response() for o in outcomes],
    }


def _reserve(request: Request, client: Client, count: int) -> Charge:
    """Take ``count`` predictions from the key's per-minute quota (429 with RateLimit-*)."""
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.reserve(client, count)


async def _predict(
    request: Request,
    charge: Charge,
    items: list[ScoreItem],
    ctx: RequestContext,
    render: Render,
) -> FastJSONResponse:
    """Score, record and pay the day's quota in one transaction; 201, or 429 and nothing."""
    service: PredictionService = request.app.state.service
    result = await service.predict_charged(items, ctx, charge, render=render)
    if result.replayed:  # a replay makes no prediction: it does not count in the quotas
        return FastJSONResponse(
            result.body, status_code=201, headers={"Idempotent-Replayed": "true"}
        )
    return FastJSONResponse(
        result.body, status_code=201, headers=charge.paid(result.used).headers()
    )


@router.post(
    "/predictions",
    response_model=PredictionResponse,
    status_code=201,
    responses=WRITE_ERRORS,
    summary="Prédire le risque de départ d'un employé",
    openapi_extra=KEY_SECURITY,
)
async def create_prediction(
    body: PredictionRequest,
    request: Request,
    client: PredicteurRapide,
    idempotency_key: IdempotencyHeader = None,
) -> Any:
    """Rôles : `predicteur`, `admin`.

    Renvoie la probabilité de départ, la décision au seuil du modèle, le niveau de risque et
    les facteurs qui l'expliquent. L'entrée et la sortie sont enregistrées dans PostgreSQL
    (une transaction) avant la réponse.
    """
    return await predict_one(request, body, client, idempotency_key)


async def predict_one(
    request: Request, body: PredictionRequest, client: Client, idempotency_key: str | None
) -> FastJSONResponse:
    """The work of ``POST /v1/predictions`` once the request is accepted (route and lane)."""
    features = body.features()
    payload = body.model_dump(mode="json", exclude_none=True)
    charge = _reserve(request, client, 1)
    ctx = await _context(request, client.id, "api", idempotency_key)
    items = [ScoreItem(features, body.id_employee, payload)]
    return await _predict(request, charge, items, ctx, _single)


@router.post(
    "/predictions/batch",
    response_model=BatchPredictionResponse,
    status_code=201,
    responses=WRITE_ERRORS,
    summary="Prédire pour un lot de 1 à 1 000 employés",
    openapi_extra=KEY_SECURITY,
)
async def create_batch_prediction(
    body: BatchPredictionRequest,
    request: Request,
    client: PredicteurRapide,
    idempotency_key: IdempotencyHeader = None,
) -> Any:
    """Rôles : `predicteur`, `admin`.

    Le lot est validé en entier (tout ou rien, chaque erreur avec son indice de ligne), évalué
    en un seul appel vectorisé et enregistré en une seule transaction.
    """
    limit = request.app.state.settings.api.max_batch_size
    if len(body.employes) > limit:
        raise ValidationError(
            f"Lot trop grand : {len(body.employes)} employés (au plus {limit}).",
        )
    charge = _reserve(request, client, len(body.employes))
    items = [
        ScoreItem(e.features(), e.id_employee, e.model_dump(mode="json", exclude_none=True))
        for e in body.employes
    ]
    ctx = await _context(request, client.id, "batch", idempotency_key)
    return await _predict(request, charge, items, ctx, _batch)


@router.post(
    "/employees/{id_employee}/predictions",
    response_model=PredictionResponse,
    status_code=201,
    responses=WRITE_ERRORS,
    summary="Prédire pour un employé enregistré",
    openapi_extra=KEY_SECURITY,
)
async def create_employee_prediction(
    id_employee: Annotated[int, Path(ge=1, le=2_147_483_647, description="Identifiant.")],
    request: Request,
    client: PredicteurRapide,
    idempotency_key: IdempotencyHeader = None,
) -> Any:
    """Rôles : `predicteur`, `admin`.

    Les caractéristiques sont lues dans la base (vue `employee_features`), puis la prédiction
    est enregistrée comme toute autre. 404 si l'employé est inconnu.
    """
    service: PredictionService = request.app.state.service
    features = await service.employee_features(id_employee)
    payload = {"id_employee": id_employee, **features}
    charge = _reserve(request, client, 1)
    ctx = await _context(request, client.id, "employee", idempotency_key)
    items = [ScoreItem(features, id_employee, payload)]
    return await _predict(request, charge, items, ctx, _single)


@router.get(
    "/predictions",
    response_model=PredictionPage,
    responses={**ERRORS, 422: {"model": Problem, "description": "Filtre ou curseur invalide."}},
    summary="Lister les prédictions enregistrées",
)
async def list_predictions(
    request: Request,
    client: Lecteur,
    pool: PoolDep,
    id_employee: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    depuis: Annotated[
        IsoDateTime | None, Query(description="Date de début (incluse), ISO 8601.")
    ] = None,
    jusqu_a: Annotated[
        IsoDateTime | None, Query(description="Date de fin (exclue), ISO 8601.")
    ] = None,
    model_version: Annotated[str | None, Query(max_length=32)] = None,
    prediction: Annotated[Label | None, Query()] = None,
    limite: Annotated[int, Query(ge=1, le=200, description="Taille de page (≤ 200).")] = 50,
    curseur: Annotated[str | None, Query(max_length=200, description="Curseur de page.")] = None,
) -> Any:
    """Rôles : `predicteur` (ses propres prédictions), `auditeur` et `admin` (toutes).

    Les plus récentes d'abord ; pagination par curseur (`curseur_suivant`).
    """
    after = records.decode_cursor(curseur)
    query = records.HistoryQuery(
        id_employee=id_employee,
        since=depuis,
        until=jusqu_a,
        model_version=model_version,
        label=prediction.value if prediction else None,
    )
    async with pool.connection() as conn:
        page = await records.list_predictions(conn, client, query, after=after, limit=limite)
    return FastJSONResponse(page.as_response())


@router.get(
    # `:int` so that GET /v1/predictions/batch is a 405 (wrong method), not a malformed id.
    "/predictions/{prediction_id:int}",
    response_model=RecordedPrediction,
    responses={**ERRORS, 404: {"model": Problem, "description": "Prédiction introuvable."}},
    summary="Lire une prédiction enregistrée",
)
async def read_prediction(
    prediction_id: Annotated[int, Path(ge=1, le=9_223_372_036_854_775_807)],
    client: Lecteur,
    pool: PoolDep,
) -> Any:
    """Rôles : `predicteur` (les siennes seulement : 404 sinon), `auditeur`, `admin`.

    L'entrée enregistrée, la sortie, la version du modèle, qui l'a demandée et quand.
    """
    async with pool.connection() as conn:
        return FastJSONResponse(await records.read_prediction(conn, prediction_id, client))
