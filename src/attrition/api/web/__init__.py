"""The web interface for HR users, under /app: server-rendered pages in French.

It is a second door to the same rooms, not a second house: people sign in with a login and
a password (:mod:`attrition.services.accounts`) and their server-side session is read from
PostgreSQL on every request (sign-out, a disabled account or an admin's revocation end it at
once); each account acts under its audit identity, as a key would; roles are checked by the
API's own dependencies (``deps.Predicteur``...); forms are validated by the API's
``PredictionRequest`` and scored and recorded by ``PredictionService.predict`` with source
``web``; history is read with the API's audit queries. Every POST form carries a per-session
CSRF token. Errors become French pages (same status and wording as the API's problem
responses) and refused requests are recorded like the API's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attrition.api.web import accounts, history, model, outcomes, scoring, session
from attrition.api.web.rendering import STATIC_DIR
from attrition.api.web.session import SESSION_COOKIE
from attrition.config import Settings
from attrition.security.sessions import (
    SESSION_MAX_AGE_S,
    cookie_must_be_secure,
    host_name,
    session_signing_key,
)
from attrition.services.accounts import AccountService

#: Where the pages live, and the path of their session cookie.
PAGES = "/app"

router = APIRouter()
for _pages in (session, accounts, scoring, history, model, outcomes):
    router.include_router(_pages.router)


def install(app: FastAPI, settings: Settings) -> Callable[[ASGIApp], ASGIApp]:
    """Add the pages and their static files to ``app``; return their session layers.

    The edge middleware (api/middleware.py) puts the returned layers around the pages only:
    one dispatch on the path for every request, where a middleware of its own added one more
    layer to all of them.
    """
    secret = settings.secret_key.get_secret_value()
    # The pool is opened by the app's lifespan: looked up when a page needs it.
    app.state.accounts = AccountService(lambda: app.state.pool.connection())
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def layers(inner: ASGIApp) -> ASGIApp:
        return session_layers(
            inner,
            secret_key=session_signing_key(secret),
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_MAX_AGE_S,
            path=PAGES,
            # Framed by another site (the page of a Hugging Face Space), a strict cookie
            # would never be sent: then SameSite=None, Secure, and partitioned per top-level
            # site (CHIPS). The CSRF token of every form still guards the POSTs.
            same_site="none" if settings.api.frame_ancestors else "strict",
            https_only=settings.is_prod or bool(settings.api.frame_ancestors),
            partitioned=bool(settings.api.frame_ancestors),
        )

    return layers


def is_page(path: str) -> bool:
    """Whether ``path`` is a page (``/app`` and below): the paths the session cookie reaches."""
    return path == PAGES or path.startswith(PAGES + "/")


def session_layers(
    app: ASGIApp,
    *,
    secret_key: str,
    session_cookie: str,
    max_age: int,
    path: str,
    same_site: Literal["lax", "strict", "none"] = "strict",
    https_only: bool = False,
    partitioned: bool = False,
) -> ASGIApp:
    """Starlette's signed-cookie sessions, with the cookie made ``Secure`` per request."""
    sessions = SessionMiddleware(
        app,
        secret_key=secret_key,
        session_cookie=session_cookie,
        max_age=max_age,
        path=path,
        same_site=same_site,
        https_only=https_only,
        partitioned=partitioned,
    )
    return SecureSessionCookie(sessions, cookie=session_cookie)


class PageSessions:
    """The session layers for the pages only (the cookie's path is ``/app``), as one layer.

    A browser sends the session cookie to ``/app`` and below only, and only the pages read
    ``request.session``: the API, the health checks and the static files skip the two
    layers (and their wrapped ``send``). The service itself lets its edge middleware do this
    dispatch (:func:`install`); this class is the same rule as a middleware of its own.
    """

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.pages = session_layers(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if is_page(scope.get("path", "")):
            await self.pages(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class SecureSessionCookie:
    """Mark the session cookie ``Secure`` unless the page is plain HTTP on the loopback address.

    (Starlette's ``SessionMiddleware`` decides once, at start-up; the address is known per
    request.)
    """

    def __init__(self, app: ASGIApp, *, cookie: str) -> None:
        self.app = app
        self.prefix = f"{cookie}=".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = host_name(Headers(scope=scope).get("host", ""))
        secure = cookie_must_be_secure(scope.get("scheme", "http"), host)

        async def send_secure(message: Message) -> None:
            if secure and message["type"] == "http.response.start":
                message["headers"] = [
                    (name, value + b"; secure")
                    if name.lower() == b"set-cookie"
                    and value.startswith(self.prefix)
                    and b"; secure" not in value.lower()
                    else (name, value)
                    for name, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_secure)
