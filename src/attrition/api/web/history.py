"""Reading the trail: one recorded prediction with its factors, and the filtered history."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from attrition import wording
from attrition.api import problems
from attrition.api.web.forms import parse_number
from attrition.api.web.rendering import CHECK_READ, at_midnight, render
from attrition.api.web.session import html_errors, session_client
from attrition.data import vocabulary as voc
from attrition.errors import AttritionError, FieldError, ValidationError
from attrition.model import features as feat
from attrition.services import records

router = APIRouter(prefix="/app", include_in_schema=False)

PAGE_SIZE = 50


@router.get("/predictions/{prediction_id}", name="web_read_prediction")
@html_errors
async def read_prediction(request: Request, prediction_id: int) -> Response:
    """One recorded prediction: probability, decision, risk, threshold and its factors."""
    client = await CHECK_READ(await session_client(request))
    async with request.app.state.pool.connection() as conn:
        prediction = await records.read_prediction(conn, prediction_id, client)
    return await render(
        request,
        "resultat.html",
        {
            "page": "historique",
            "p": prediction,
            "factors": factor_bars(prediction["explication"], prediction["entree"]),
            "inputs": [(f.label, prediction["entree"].get(f.name)) for f in voc.FEATURES],
        },
        client=client,
    )


def factor_bars(
    explanation: Mapping[str, Any], inputs: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Factors sorted by contribution, with a bar width relative to the largest one.

    The value shown is the factor's own: the input for a raw field or a log-scaled one, the
    engineered value (a share, a mean, a count) for a derived feature. The recorded
    ``valeur`` of a derived feature is already the engineered one (see
    :mod:`attrition.model.explanations`); recomputing it from the recorded inputs gives it
    its display type (an indicator reads as oui/non, not 1/0).
    """
    factors = list(explanation.get("facteurs_hausse", [])) + list(
        explanation.get("facteurs_baisse", [])
    )
    factors.sort(key=lambda f: f["contribution"], reverse=True)
    largest = max((abs(f["contribution"]) for f in factors), default=0.0) or 1.0
    derived = _engineered(inputs) if inputs else {}
    out = []
    for factor in factors:
        value = factor.get("valeur")
        name = factor.get("variable", "")
        if name in derived and name not in voc.FEATURES_BY_NAME and not name.startswith("log_"):
            value = derived[name]
        width = round(100 * abs(factor["contribution"]) / largest, 1)
        label, value = feat.plain_factor(name, value, factor.get("libelle"))
        out.append(
            {
                **factor,
                "libelle_lisible": label,
                "valeur": value,
                "valeur_technique": factor.get("valeur"),
                "effet": wording.effect(factor["contribution"]),
                "width": width,
            }
        )
    return out


def _engineered(inputs: Mapping[str, Any]) -> dict[str, Any]:
    try:
        columns = feat.engineer(feat.columns_from_records([inputs]))
    except AttritionError:
        return {}
    values: dict[str, Any] = {
        name: column[0].item() for name, column in columns.items() if hasattr(column[0], "item")
    }
    values["sans_participation_pee"] = bool(values.get("sans_participation_pee"))
    return values


def _parse_date(raw: str, name: str, errors: list[FieldError]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(FieldError(name, "date attendue au format AAAA-MM-JJ"))
        return None


def history_filter(
    params: Mapping[str, str],
) -> tuple[records.HistoryQuery, int | None, dict[str, str], list[FieldError]]:
    """The history's filters from the page's query string (French errors)."""
    errors: list[FieldError] = []
    values = {
        k: params.get(k, "").strip()
        for k in ("id_employee", "depuis", "jusqu_a", "prediction", "model_version", "curseur")
    }
    ident = None
    if values["id_employee"]:
        parsed = parse_number(values["id_employee"], "int")
        if isinstance(parsed, int) and 1 <= parsed <= 2_147_483_647:
            ident = parsed
        else:
            errors.append(FieldError("id_employee", "nombre entier positif attendu"))
    since = _parse_date(values["depuis"], "depuis", errors)
    until = _parse_date(values["jusqu_a"], "jusqu_a", errors)
    label = values["prediction"] or None
    if label not in (None, "depart", "reste"):
        errors.append(
            FieldError("prediction", "valeur non autorisée ; valeurs possibles : depart, reste")
        )
        label = None
    version = values["model_version"][:32] or None
    after = None
    try:
        after = records.decode_cursor(values["curseur"])
    except ValidationError as exc:
        errors.extend(exc.errors)
    query = records.HistoryQuery(
        id_employee=ident,
        since=at_midnight(since) if since else None,
        until=at_midnight(until + timedelta(days=1)) if until else None,
        model_version=version,
        label=label,
    )
    return query, after, values, errors


@router.get("/historique", name="web_history")
@html_errors
async def history(request: Request) -> Response:
    """Recorded predictions, newest first, with the API's filters (a predicteur sees his own)."""
    client = await CHECK_READ(await session_client(request))
    query, after, values, errors = history_filter(request.query_params)
    if errors:
        await problems.record_rejection(request, 422, [e.as_dict() for e in errors])
        return await render(
            request,
            "historique.html",
            {
                "page": "historique",
                "values": values,
                "errors": {e.field: e.message for e in errors},
                "rows": [],
                "next_query": None,
            },
            client=client,
            status=422,
        )
    async with request.app.state.pool.connection() as conn:
        page = await records.list_predictions(conn, client, query, after=after, limit=PAGE_SIZE)
    next_query = None
    if page.next_cursor is not None:
        next_query = {k: v for k, v in values.items() if v and k != "curseur"}
        next_query["curseur"] = page.next_cursor
    return await render(
        request,
        "historique.html",
        {
            "page": "historique",
            "values": values,
            "errors": {},
            "rows": page.predictions,
            "next_query": next_query,
            "first_page": after is None,
        },
        client=client,
    )
