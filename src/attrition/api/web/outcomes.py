"""The outcome page: HR records what happened to an employee (rh, admin).

Same rules and same recording as ``POST /v1/employees/{id}/issue``: the API's schema
validates the form, :func:`attrition.services.outcomes.record_outcome` writes the fact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pydantic
from fastapi import APIRouter, Request
from starlette.responses import Response

from attrition.api import problems
from attrition.api.schemas import OutcomeRequest
from attrition.api.web.forms import parse_number
from attrition.api.web.rendering import CHECK_RH, render
from attrition.api.web.session import checked_form, html_errors, session_client
from attrition.errors import NotFoundError, ValidationError
from attrition.security.clients import Client
from attrition.services.outcomes import record_outcome

router = APIRouter(prefix="/app", include_in_schema=False)


async def _page(
    request: Request,
    client: Client,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    recorded: Any = None,
    status: int = 200,
) -> Response:
    return await render(
        request,
        "issue.html",
        {
            "page": "issue",
            "values": values or {"date": datetime.now(UTC).date().isoformat()},
            "errors": errors or {},
            "recorded": recorded,
        },
        client=client,
        status=status,
    )


@router.get("/issue", name="web_outcome_form")
@html_errors
async def outcome_form(request: Request) -> Response:
    """The form: employee, status, date."""
    client = await CHECK_RH(await session_client(request))
    return await _page(request, client)


@router.post("/issue", name="web_outcome")
@html_errors
async def record(request: Request) -> Response:
    """Validate with the API's schema, then record the fact (source api, like the API)."""
    client = await CHECK_RH(await session_client(request))
    form = await checked_form(request)
    values = {key: str(form.get(key) or "").strip() for key in ("id_employee", "statut", "date")}
    errors: dict[str, str] = {}
    ident = parse_number(values["id_employee"], "int")
    if not isinstance(ident, int) or not 1 <= ident <= 2_147_483_647:
        errors["id_employee"] = "Identifiant invalide : un nombre entier positif est attendu."
    try:
        body = OutcomeRequest.model_validate({"statut": values["statut"], "date": values["date"]})
    except pydantic.ValidationError as exc:
        for item in problems.translate([dict(e) for e in exc.errors()]):
            errors.setdefault(item["champ"], item["message"])
    if errors:
        items = [{"champ": k, "message": v} for k, v in errors.items()]
        await problems.record_rejection(request, 422, items, values)
        return await _page(request, client, values=values, errors=errors, status=422)
    assert isinstance(ident, int)
    try:
        async with request.app.state.pool.connection() as conn, conn.transaction():
            outcome = await record_outcome(
                conn,
                ident,
                body.statut,
                body.date,
                source="api",
                recorded_by=f"web, clé {client.key_id} ({client.name})",
            )
    except (NotFoundError, ValidationError) as exc:
        field = "id_employee" if isinstance(exc, NotFoundError) else "date"
        status = 404 if isinstance(exc, NotFoundError) else 422
        return await _page(
            request, client, values=values, errors={field: exc.message}, status=status
        )
    return await _page(request, client, recorded=outcome)
