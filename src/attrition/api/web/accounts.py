"""People's accounts in the web interface: one's own password, and the admin's "Comptes" page.

The rules live in :class:`~attrition.services.accounts.AccountService`; these pages only read
the forms (CSRF-checked), call it, and show its French errors. A one-time password is shown in
the response to the POST that created it, never put in the (signed, readable) cookie.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from attrition.api import problems
from attrition.api.web.rendering import CHECK_ADMIN, redirect, render
from attrition.api.web.session import (
    accounts,
    checked_form,
    html_errors,
    session_account,
    session_client,
)
from attrition.errors import ConflictError, NotFoundError, ValidationError
from attrition.security.clients import Client
from attrition.security.passwords import MAX_LENGTH, RULE
from attrition.services.accounts import Issued

router = APIRouter(prefix="/app", include_in_schema=False)

PASSWORD_LABELS = {
    "mot_de_passe_actuel": "Mot de passe actuel",
    "nouveau_mot_de_passe": "Nouveau mot de passe",
    "confirmation": "Confirmation",
}
LoginPath = Path(max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")


async def password_page(
    request: Request,
    *,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    account = request.state.account
    return await render(
        request,
        "mot-de-passe.html",
        {
            "page": "mot-de-passe",
            "forced": account.must_change_password,
            "errors": errors or {},
            "message": message,
            "labels": PASSWORD_LABELS,
            "rule": RULE,
            "max_length": MAX_LENGTH,
        },
        client=request.state.client,
        status=status,
    )


@router.get("/mot-de-passe", name="web_change_password_form")
@html_errors
async def change_password_form(request: Request) -> Response:
    """The password page (the only one open while the password is a one-time one)."""
    await session_account(request, password_page=True)
    return await password_page(request)


@router.post("/mot-de-passe", name="web_change_password")
@html_errors
async def change_password(request: Request) -> Response:
    """Replace one's password (CNIL rule); the person's other sessions end."""
    account = await session_account(request, password_page=True)
    form = await checked_form(request)
    try:
        await accounts(request).change_password(
            account,
            str(form.get("mot_de_passe_actuel") or ""),
            str(form.get("nouveau_mot_de_passe") or ""),
            str(form.get("confirmation") or ""),
        )
    except ValidationError as exc:
        items = [e.as_dict() for e in exc.errors]
        await problems.record_rejection(request, 422, items)
        errors = {e.field: e.message for e in exc.errors}
        return await password_page(request, errors=errors, message=exc.message, status=422)
    request.session["notice"] = "Mot de passe enregistré. Vos autres sessions ont été fermées."
    return redirect(request, "web_home")


# ---- the admin's page ----------------------------------------------------------------------------


async def admin(request: Request) -> Client:
    client: Client = await CHECK_ADMIN(await session_client(request))
    return client


async def users_page(
    request: Request,
    client: Client,
    *,
    issued: Issued | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    service = accounts(request)
    context: dict[str, Any] = {
        "page": "comptes",
        "users": await service.list_users(),
        "sessions": await service.list_sessions(),
        "current_session": request.state.account.session_id,
        "issued": issued,
        "values": values or {},
        "errors": errors or {},
        "message": message,
        "now": datetime.now(UTC),
    }
    return await render(request, "comptes.html", context, client=client, status=status)


@router.get("/comptes", name="web_users")
@html_errors
async def list_users(request: Request) -> Response:
    """Accounts and open sessions (admin)."""
    return await users_page(request, await admin(request))


@router.post("/comptes", name="web_create_user")
@html_errors
async def create_user(request: Request) -> Response:
    """Create an account; its one-time password is shown once, in this response."""
    client = await admin(request)
    form = await checked_form(request)
    values = {"login": str(form.get("login") or "")[:200], "role": str(form.get("role") or "")}
    try:
        issued = await accounts(request).create_user(values["login"], values["role"])
    except (ValidationError, ConflictError) as exc:
        status = 409 if isinstance(exc, ConflictError) else 422
        items = [e.as_dict() for e in exc.errors]
        await problems.record_rejection(request, status, items)
        return await users_page(
            request,
            client,
            values=values,
            errors={e.field: e.message for e in exc.errors},
            message=exc.message,
            status=status,
        )
    return await users_page(request, client, issued=issued, status=201)


@router.post("/comptes/{login}/reinitialisation", name="web_reset_user")
@html_errors
async def reset_user(request: Request, login: str = LoginPath) -> Response:
    """A new one-time password for ``login``; the account's sessions end."""
    client = await admin(request)
    await checked_form(request)
    issued = await accounts(request).reset_password(login)
    return await users_page(request, client, issued=issued)


@router.post("/comptes/{login}/desactivation", name="web_disable_user")
@html_errors
async def disable_user(request: Request, login: str = LoginPath) -> Response:
    """Disable ``login``: its sessions end at once (one's own account is kept)."""
    client = await admin(request)
    await checked_form(request)
    if login == client.name:
        raise ValidationError(
            "Vous ne pouvez pas désactiver votre propre compte.",
        )
    await accounts(request).disable_user(login)
    request.session["notice"] = f"Compte « {login} » désactivé ; ses sessions sont fermées."
    return redirect(request, "web_users")


@router.post("/comptes/{login}/reactivation", name="web_enable_user")
@html_errors
async def enable_user(request: Request, login: str = LoginPath) -> Response:
    """Re-enable a disabled ``login`` (same password, new audit identity)."""
    await admin(request)
    await checked_form(request)
    if await accounts(request).enable_user(login):
        request.session["notice"] = (
            f"Compte « {login} » réactivé : il peut se reconnecter avec son mot de passe."
        )
    else:
        request.session["notice"] = f"Compte « {login} » déjà actif."
    return redirect(request, "web_users")


@router.post("/sessions/{session_id}/fin", name="web_end_session")
@html_errors
async def end_session(request: Request, session_id: int = Path(ge=1, le=2**62)) -> Response:
    """End one session (admin): the browser holding it is signed out at its next page."""
    await admin(request)
    await checked_form(request)
    # Already ended: nothing to do, the page shows the sessions as they are.
    with contextlib.suppress(NotFoundError):
        await accounts(request).end_session(session_id)
    request.session["notice"] = f"Session n° {session_id} fermée."
    return redirect(request, "web_users")
