"""Sign-in, sign-out and the server-side session of a person, CSRF, errors as pages."""

from __future__ import annotations

import functools
import hmac
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from psycopg_pool import PoolTimeout
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from attrition.api import problems
from attrition.api.web.rendering import CHECK_SCORE, allowed, redirect, render
from attrition.errors import (
    AttritionError,
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
)
from attrition.security.clients import Client
from attrition.security.limits import Bucket
from attrition.services.accounts import Account, AccountService

router = APIRouter(prefix="/app", include_in_schema=False)

SESSION_COOKIE = "attrition_session"


class PasswordChangeRequired(Exception):
    """The person still has a one-time password: the password page comes first."""


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


def accounts(request: Request) -> AccountService:
    service: AccountService = request.app.state.accounts
    return service


def as_client(account: Account) -> Client:
    """A person as the API's role checks and the audit trail see a caller.

    ``id`` is the account's audit identity (``api_keys.id``): what the person scores is
    recorded and owned like what a key scores.
    """
    return Client(
        id=account.api_key_id, key_id=account.key_id, name=account.login, role=account.role
    )


async def session_account(request: Request, *, password_page: bool = False) -> Account:
    """The signed-in person, read from the server-side session on every request.

    Until the one-time password is replaced, only the password page is open.
    """
    token = request.session.get("sid")
    if not isinstance(token, str):
        raise SignInRequired()
    account = await accounts(request).session(token)
    if account is None:
        request.session.clear()
        await problems.record_rejection(
            request, 401, [{"champ": "session", "message": "session terminée ou expirée"}]
        )
        raise SignInRequired("Votre session est terminée ou a expiré : reconnectez-vous.")
    request.state.client = as_client(account)
    request.state.account = account
    if account.must_change_password and not password_page:
        raise PasswordChangeRequired()
    return account


async def session_client(request: Request) -> Client:
    """The signed-in person as a :class:`Client`, for the API's role checks."""
    await session_account(request)
    client: Client = request.state.client
    return client


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
        except PasswordChangeRequired:
            return RedirectResponse(request.app.url_path_for("web_change_password_form"), 303)
        except AttritionError as exc:
            return await error_page(request, exc)
        except (psycopg.OperationalError, PoolTimeout):
            return await error_page(request, problems.database_unavailable())

    return wrapper


async def start_page(client: Client) -> str:
    """Scoring for those who may score, the outcome form for HR-only users, else history."""
    if await allowed(CHECK_SCORE, client):
        return "web_score_form"
    if client.role == "rh":
        return "web_outcome_form"
    return "web_history"


@router.get("", name="web_home")
@html_errors
async def home(request: Request) -> Response:
    """Start page: scoring for those who may score, history for the others."""
    if not isinstance(request.session.get("sid"), str):
        return redirect(request, "web_sign_in_form")
    client = await session_client(request)
    return redirect(request, await start_page(client))


@router.get("/connexion", name="web_sign_in_form")
@html_errors
async def sign_in_form(request: Request) -> Response:
    """The sign-in page."""
    return await render(request, "connexion.html")


def _address_blocked(request: Request) -> RateLimitedError | None:
    """The refusal for an address whose failed sign-ins are spent, else None.

    Failures are counted per address (:meth:`_count_failure`) in the same kind of limiter as
    the API's failed authentications (:mod:`attrition.security.limits`); once an address has
    spent its budget, every sign-in from it is refused before any password is checked (a
    right guess must not get through), until the budget refills. Other addresses are not
    affected, and each account keeps its own throttle.
    """
    limit: Bucket = request.app.state.sign_in_limit
    wait = limit.peek_blocked(f"ip:{_address(request)}")
    if wait <= 0:
        return None
    seconds = max(1, math.ceil(wait))
    return RateLimitedError(
        "Trop d'échecs de connexion depuis cette adresse : réessayez dans "
        f"{seconds} seconde{'s' if seconds > 1 else ''}.",
        retry_after=seconds,
    )


def _count_failure(request: Request) -> None:
    limit: Bucket = request.app.state.sign_in_limit
    limit.take(f"ip:{_address(request)}")


def _address(request: Request) -> str:
    # The peer, or the client behind a trusted proxy (ATTRITION_API__TRUSTED_PROXIES).
    return request.client.host if request.client else "inconnue"


@router.post("/connexion", name="web_sign_in")
@html_errors
async def sign_in(request: Request) -> Response:
    """Check the login and password (throttled per address and per account), then open a
    server-side session."""
    form = await checked_form(request)
    login = str(form.get("login") or "")[:200]
    password = str(form.get("mot_de_passe") or "")
    try:
        blocked = _address_blocked(request)
        if blocked is not None:
            raise blocked
        try:
            signed = await accounts(request).sign_in(login, password)
        except AuthenticationError:
            _count_failure(request)
            raise
    except (AuthenticationError, RateLimitedError) as exc:
        status = 429 if isinstance(exc, RateLimitedError) else 401
        await problems.record_rejection(
            request, status, [{"champ": "mot_de_passe", "message": exc.message}]
        )
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimitedError) else None
        )
        return await render(
            request,
            "connexion.html",
            {"error": exc.message, "login": login.strip()},
            status=status,
            headers=headers,
        )
    # A new session (and CSRF token) at sign-in: nothing from before survives (fixation).
    request.session.clear()
    request.session.update(sid=signed.token, csrf=secrets.token_urlsafe(32))
    if signed.account.must_change_password:
        return redirect(request, "web_change_password_form")
    client = as_client(signed.account)
    return redirect(request, await start_page(client))


@router.post("/deconnexion", name="web_sign_out")
@html_errors
async def sign_out(request: Request) -> Response:
    """End the session on the server (a copy of the cookie opens nothing), then forget it."""
    await checked_form(request)
    token = request.session.get("sid")
    if isinstance(token, str):
        account = await accounts(request).session(token)
        if account is not None:
            await accounts(request).sign_out(account)
    request.session.clear()
    request.session["notice"] = "Vous êtes déconnecté(e)."
    return redirect(request, "web_sign_in_form")
