"""Sign-in, sign-out and the session: the key sealed in the cookie, CSRF, errors as pages."""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from psycopg_pool import PoolTimeout
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from attrition.api import deps, problems
from attrition.api.web.rendering import CHECK_SCORE, allowed, redirect, render
from attrition.errors import AttritionError, AuthenticationError, PermissionDeniedError
from attrition.security.clients import Client

router = APIRouter(prefix="/app", include_in_schema=False)

SESSION_COOKIE = "attrition_session"


class SignInRequired(Exception):
    """No valid session: back to the sign-in page, with an optional French notice."""

    def __init__(self, notice: str | None = None) -> None:
        super().__init__(notice)
        self.notice = notice


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's (403 otherwise)."""
    form = await request.form()
    sent, expected = form.get("csrf"), request.session.get("csrf")
    if not (
        isinstance(sent, str)
        and isinstance(expected, str)
        and hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise PermissionDeniedError(
            "Jeton de sécurité du formulaire absent ou expiré : rechargez la page, puis "
            "recommencez."
        )
    return form


async def session_client(request: Request) -> Client:
    """The signed-in user, re-authenticated with the key sealed in the session."""
    sealed = request.session.get("cle")
    if not isinstance(sealed, str):
        raise SignInRequired()
    key = request.app.state.key_sealer.open(sealed)
    if key is None:
        request.session.clear()
        raise SignInRequired("Votre session a expiré : reconnectez-vous.")
    try:
        return await deps.authenticate(request, key)
    except AuthenticationError as exc:
        request.session.clear()
        await problems.record_rejection(
            request, 401, [{"champ": "session", "message": exc.message}]
        )
        raise SignInRequired(f"{exc.message} Reconnectez-vous avec une clé valide.") from None


async def error_page(request: Request, exc: AttritionError) -> Response:
    """The French page of a domain error: the API's status, title, headers and recording."""
    policy = problems.problem_for(exc)
    if policy.record:
        await problems.record_rejection(
            request, policy.status, policy.errors or [{"champ": "-", "message": exc.message}]
        )
    client = getattr(request.state, "client", None)
    return await render(
        request,
        "erreur.html",
        {
            "title": policy.title,
            "message": exc.message,
            "errors": policy.errors,
            "status": policy.status,
        },
        client=client,
        status=policy.status,
        headers=policy.headers,
    )


def html_errors(
    endpoint: Callable[..., Awaitable[Response]],
) -> Callable[..., Awaitable[Response]]:
    """Turn domain errors into French pages and a missing session into the sign-in page."""

    @functools.wraps(endpoint)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        request: Request = kwargs["request"]
        try:
            return await endpoint(*args, **kwargs)
        except SignInRequired as exc:
            if exc.notice:
                request.session["notice"] = exc.notice
            return RedirectResponse(request.app.url_path_for("web_sign_in_form"), 303)
        except AttritionError as exc:
            return await error_page(request, exc)
        except (psycopg.OperationalError, PoolTimeout):
            return await error_page(request, problems.database_unavailable())

    return wrapper


@router.get("", name="web_home")
@html_errors
async def home(request: Request) -> Response:
    """Start page: scoring for those who may score, history for the others."""
    if not isinstance(request.session.get("cle"), str):
        return redirect(request, "web_sign_in_form")
    client = await session_client(request)
    return redirect(
        request, "web_score_form" if await allowed(CHECK_SCORE, client) else "web_history"
    )


@router.get("/connexion", name="web_sign_in_form")
@html_errors
async def sign_in_form(request: Request) -> Response:
    """The sign-in page."""
    return await render(request, "connexion.html")


@router.post("/connexion", name="web_sign_in")
@html_errors
async def sign_in(request: Request) -> Response:
    """Check the key with the API's authenticator, then open a session holding it sealed."""
    form = await checked_form(request)
    raw = str(form.get("cle") or "").strip()
    try:
        client = await deps.authenticate(request, raw)
    except AuthenticationError as exc:
        message = exc.message if raw else "Saisissez votre clé API."
        await problems.record_rejection(request, 401, [{"champ": "cle", "message": message}])
        return await render(request, "connexion.html", {"error": message}, status=401)
    # A new session (and CSRF token) at sign-in: nothing from before survives (fixation).
    request.session.clear()
    request.session.update(
        cle=request.app.state.key_sealer.seal(raw),
        csrf=secrets.token_urlsafe(32),
    )
    return redirect(
        request, "web_score_form" if await allowed(CHECK_SCORE, client) else "web_history"
    )


@router.post("/deconnexion", name="web_sign_out")
@html_errors
async def sign_out(request: Request) -> Response:
    """Forget the session (the key stays valid for the API: revoke it there if needed)."""
    await checked_form(request)
    request.session.clear()
    request.session["notice"] = "Vous êtes déconnecté(e)."
    return redirect(request, "web_sign_in_form")
