"""The scoring pages: a stored employee by id or the full form, scored and recorded (web)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

import orjson
import pydantic
from fastapi import APIRouter, Request
from starlette.responses import Response

from attrition.api import problems
from attrition.api.schemas import EXAMPLE_EMPLOYEE, PredictionRequest
from attrition.api.translations import translate
from attrition.api.web.forms import form_sections, form_value, parse_number, request_data
from attrition.api.web.rendering import CHECK_SCORE, redirect, render
from attrition.api.web.session import checked_form, html_errors, session_client
from attrition.data import vocabulary as voc
from attrition.db import idempotency
from attrition.errors import NotFoundError
from attrition.security.clients import Client
from attrition.services.predictions import Outcome, RequestContext, ScoreItem

router = APIRouter(prefix="/app", include_in_schema=False)

FORM_TOKEN = re.compile(r"[0-9a-f]{32}")


def _context(
    request: Request, client: Client, form: Mapping[str, Any], payload: dict[str, Any]
) -> RequestContext:
    """The request context; with the form's one-time token, an idempotent one.

    The key joins the token and the digest of what is scored: the same form sent twice gets
    the first prediction back, while a form changed and sent again (browser back, then edit)
    is a new prediction, not a refusal.
    """
    token = str(form.get("jeton") or "")
    if not FORM_TOKEN.fullmatch(token):
        return RequestContext(
            request_id=request.state.request_id, api_key_id=client.id, source="web"
        )
    digest = idempotency.request_hash(request.url.path, orjson.dumps(payload))
    return RequestContext(
        request_id=request.state.request_id,
        api_key_id=client.id,
        source="web",
        idempotency_key=f"web:{token}:{digest[:16]}",
        request_hash=digest,
    )


def _prediction_id(outcomes: list[Outcome]) -> dict[str, Any]:
    return {"prediction_id": outcomes[0].prediction_id}


async def _score_and_show(
    request: Request, client: Client, form: Mapping[str, Any], item: ScoreItem
) -> Response:
    """Score and record ``item`` (once per form token), then show the recorded prediction."""
    ctx = _context(request, client, form, item.payload)
    charge = request.app.state.authenticator.reserve(client, 1)  # the key's quotas, as the API
    result = await request.app.state.service.predict_charged(
        [item], ctx, charge, render=_prediction_id
    )
    assert result.body is not None
    return redirect(request, "web_read_prediction", prediction_id=result.body["prediction_id"])


async def score_page(
    request: Request,
    client: Client,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, str] | None = None,
    summary: list[dict[str, Any]] | None = None,
    employee_error: str | None = None,
    employee_value: str = "",
    status: int = 200,
) -> Response:
    values = values or {}
    return await render(
        request,
        "prediction.html",
        {
            "page": "prediction",
            "sections": form_sections(values, errors or {}),
            "id_employee": form_value(values.get("id_employee")),
            "summary": summary or [],
            "employee_error": employee_error,
            "employee_value": employee_value,
            # One per rendering of the forms: a second submission of the same form (double
            # click, reload of the POST) replays the first prediction instead of adding one.
            "form_token": secrets.token_hex(16),
        },
        client=client,
        status=status,
    )


@router.get("/prediction", name="web_score_form")
@html_errors
async def score_form(request: Request) -> Response:
    """The scoring page: a stored employee by id, or the full form (optionally pre-filled)."""
    client = await CHECK_SCORE(await session_client(request))
    values: dict[str, Any] = {}
    dossier = request.query_params.get("dossier", "").strip()
    if request.query_params.get("exemple"):
        values = dict(EXAMPLE_EMPLOYEE)
    elif dossier:
        ident = parse_number(dossier, "int")
        if not isinstance(ident, int) or ident < 1:
            return await score_page(
                request,
                client,
                employee_error="Identifiant invalide : un nombre entier positif est attendu.",
                employee_value=dossier,
                status=422,
            )
        try:
            features = await request.app.state.service.employee_features(ident)
        except NotFoundError as exc:
            return await score_page(
                request, client, employee_error=exc.message, employee_value=dossier, status=404
            )
        values = {**features, "id_employee": ident}
    return await score_page(request, client, values=values)


@router.post("/prediction/employe", name="web_score_employee")
@html_errors
async def score_employee(request: Request) -> Response:
    """Score a stored employee (the API's stored-employee path, recorded with source web)."""
    client = await CHECK_SCORE(await session_client(request))
    form = await checked_form(request)
    raw = str(form.get("id_employee") or "").strip()
    ident = parse_number(raw, "int")
    if not isinstance(ident, int) or not 1 <= ident <= 2_147_483_647:
        message = "Identifiant invalide : un nombre entier positif est attendu."
        await problems.record_rejection(
            request, 422, [{"champ": "id_employee", "message": message}], raw
        )
        return await score_page(
            request, client, employee_error=message, employee_value=raw, status=422
        )
    service = request.app.state.service
    try:
        features = await service.employee_features(ident)
    except NotFoundError as exc:
        return await score_page(
            request, client, employee_error=exc.message, employee_value=raw, status=404
        )
    # The view already gives JSON-ready values (the raise as double precision).
    payload = {"id_employee": ident, **features}
    return await _score_and_show(request, client, form, ScoreItem(features, ident, payload))


@router.post("/prediction", name="web_score")
@html_errors
async def score(request: Request) -> Response:
    """Validate the form with the API's schema, then score and record it (source web)."""
    client = await CHECK_SCORE(await session_client(request))
    form = await checked_form(request)
    data = request_data(form)
    try:
        body = PredictionRequest.model_validate(data)
    except pydantic.ValidationError as exc:
        items = translate([dict(e) for e in exc.errors()])
        await problems.record_rejection(request, 422, items, data)
        errors: dict[str, str] = {}
        for item in items:
            errors.setdefault(item["champ"], item["message"])
        return await score_page(
            request, client, values=data, errors=errors, summary=_labelled(items), status=422
        )
    payload = body.model_dump(mode="json", exclude_none=True)
    try:
        return await _score_and_show(
            request, client, form, ScoreItem(body.features(), body.id_employee, payload)
        )
    except NotFoundError as exc:
        items = [{"champ": "id_employee", "message": exc.message}]
        return await score_page(
            request,
            client,
            values=data,
            errors={"id_employee": exc.message},
            summary=_labelled(items),
            status=404,
        )


def _labelled(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    labels = {f.name: f.label for f in voc.FEATURES}
    labels["id_employee"] = "Identifiant de l'employé"
    return [{**item, "libelle": labels.get(item["champ"], item["champ"])} for item in items]
