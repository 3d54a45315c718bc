"""Reading the trail: one recorded prediction with its factors, and the filtered history."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from attrition.api import problems
from attrition.api.web.forms import (
    parse_number,
)
from attrition.api.web.rendering import (
    CHECK_READ,
    at_midnight,
    render,
)
from attrition.api.web.session import (
    html_errors,
    session_client,
)
from attrition.data import vocabulary as voc
from attrition.db import audit
from attrition.errors import (
    AttritionError,
    FieldError,
    NotFoundError,
)
from attrition.model import features as feat
from attrition.security.clients import Client
from attrition.services.records import recorded

router = APIRouter(prefix="/app", include_in_schema=False)

PAGE_SIZE = 50


@router.get("/predictions/{prediction_id}", name="web_read_prediction")
@html_errors
async def read_prediction(request: Request, prediction_id: int) -> Response:
    """One recorded prediction: probability, decision, risk, threshold and its factors."""
    client = await CHECK_READ(await session_client(request))
    owner = client.id if client.role == "predicteur" else None
    async with request.app.state.pool.connection() as conn:
        row = await audit.get_prediction(conn, prediction_id, owner=owner)
    if row is None:
        raise NotFoundError(f"Prédiction {prediction_id} introuvable.")
    prediction = recorded(row)
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
    engineered value (a share, a mean, a count) for a derived feature, whose recorded
    ``valeur`` is only the raw field it derives from.
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
        out.append({**factor, "valeur": value, "width": width})
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
    params: Mapping[str, str], client: Client
) -> tuple[audit.PredictionFilter, int | None, dict[str, str], list[FieldError]]:
    """The API's prediction filter from the page's query string (French errors)."""
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
    if values["curseur"]:
        try:
            after = audit.decode_cursor(values["curseur"])
        except (ValueError, KeyError, TypeError):
            errors.append(FieldError("curseur", "curseur invalide ou altéré"))
    flt = audit.PredictionFilter(
        owner=client.id if client.role == "predicteur" else None,
        id_employee=ident,
        since=at_midnight(since) if since else None,
        until=at_midnight(until + timedelta(days=1)) if until else None,
        model_version=version,
        label=label,
    )
    return flt, after, values, errors


@router.get("/historique", name="web_history")
@html_errors
async def history(request: Request) -> Response:
    """Recorded predictions, newest first, with the API's filters (a predicteur sees his own)."""
    client = await CHECK_READ(await session_client(request))
    flt, after, values, errors = history_filter(request.query_params, client)
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
        rows = await audit.list_predictions(conn, flt, after=after, limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_query = None
    if more:
        query = {k: v for k, v in values.items() if v and k != "curseur"}
        query["curseur"] = audit.encode_cursor(rows[-1]["prediction_id"])
        next_query = query
    return await render(
        request,
        "historique.html",
        {
            "page": "historique",
            "values": values,
            "errors": {},
            "rows": [recorded(r) for r in rows],
            "next_query": next_query,
            "first_page": after is None,
        },
        client=client,
    )
