"""What every page uses: templates, French formatting, the menu's role checks, CSRF token."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import RedirectResponse, Response

from attrition import wording
from attrition.api import deps
from attrition.data.extracts import COHERENCE_RULES
from attrition.errors import PermissionDeniedError
from attrition.monitoring.drift import STATUS_LABELS
from attrition.security.clients import Client

API_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = API_DIR / "templates"
STATIC_DIR = API_DIR / "static"

ROLE_LABELS = {
    "admin": "administrateur",
    "predicteur": "prédicteur",
    "auditeur": "auditeur",
    "rh": "RH",
}
RISK_LABELS = wording.RISK_LABELS
DECISION_LABELS = wording.DECISION_LABELS
SOURCE_LABELS = {
    "api": "API",
    "batch": "API (lot)",
    "employee": "API (dossier)",
    "web": "interface web",
}


def _role_check(alias: Any) -> Callable[[Client], Awaitable[Client]]:
    """The API's own role check behind ``deps.Predicteur`` and friends."""
    return get_args(alias)[1].dependency


CHECK_SCORE = _role_check(deps.Predicteur)
CHECK_READ = _role_check(deps.Lecteur)
CHECK_AUDIT = _role_check(deps.Auditeur)
CHECK_ADMIN = _role_check(deps.Admin)
CHECK_RH = _role_check(deps.Rh)


@lru_cache(maxsize=1)
def local_zone() -> tzinfo:
    """Paris time for HR users; UTC where the time zone database is missing."""
    try:
        return ZoneInfo("Europe/Paris")
    except ZoneInfoNotFoundError:  # pragma: no cover - slim images without tzdata
        return UTC


#: French numbers and values: the same functions as the CLI's (:mod:`attrition.wording`).
fr_number = wording.number
fr_value = wording.value_text


def fr_percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{fr_number(100 * value, digits)}\u00a0%"


def fr_signed(value: float) -> str:
    return ("+" if value > 0 else "−" if value < 0 else "") + fr_number(abs(value), 2)


def fr_datetime(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(local_zone()).strftime("%d/%m/%Y %H:%M")


def _path_for(request: Request) -> dict[str, Any]:
    def path_for(name: str, /, **params: Any) -> str:
        return str(request.app.url_path_for(name, **params))

    return {"path_for": path_for}


def coherence_rules() -> list[dict[str, Any]]:
    """The dataset's cross-field rules, for the form's script (the server stays the judge)."""
    rules: list[dict[str, Any]] = [
        {"champ": small, "borne": big, "ecart": 0, "texte": f"dépasse {label}"}
        for small, big, label in COHERENCE_RULES
    ]
    rules.append(
        {
            "champ": "annees_experience_totale",
            "borne": "age",
            "ecart": -14,
            "texte": "dépasse l'âge moins 14 ans",
        }
    )
    return rules


@lru_cache(maxsize=1)
def templates() -> Jinja2Templates:
    """The Jinja2 environment (autoescaped), built on first use."""
    engine = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[_path_for])
    engine.env.filters.update(
        number=fr_number,
        percent=fr_percent,
        signed=fr_signed,
        when=fr_datetime,
        value=fr_value,
    )
    engine.env.globals.update(
        ROLE_LABELS=ROLE_LABELS,
        RISK_LABELS=RISK_LABELS,
        DECISION_LABELS=DECISION_LABELS,
        SOURCE_LABELS=SOURCE_LABELS,
        STATUS_LABELS=STATUS_LABELS,
        COHERENCE_RULES=coherence_rules(),
    )
    return engine


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def allowed(check: Callable[[Client], Awaitable[Client]], client: Client) -> bool:
    try:
        await check(client)
    except PermissionDeniedError:
        return False
    return True


async def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    client: Client | None = None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render a page with what every page needs (user, menu, CSRF token, notice)."""
    base = {
        "client": client,
        "csrf": csrf_token(request),
        "can_score": client is not None and await allowed(CHECK_SCORE, client),
        "can_audit": client is not None and await allowed(CHECK_AUDIT, client),
        "can_admin": client is not None and await allowed(CHECK_ADMIN, client),
        "can_record": client is not None and await allowed(CHECK_RH, client),
        "notice": request.session.pop("notice", None),
        "ephemeral_db": getattr(request.app.state, "database", None) is not None
        and not request.app.state.database.persistent,
    }
    return templates().TemplateResponse(
        request, name, {**base, **(context or {})}, status_code=status, headers=headers
    )


def redirect(request: Request, name: str, **params: Any) -> RedirectResponse:
    return RedirectResponse(request.app.url_path_for(name, **params), status_code=303)


def at_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=local_zone())
