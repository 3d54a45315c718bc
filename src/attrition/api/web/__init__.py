"""The web interface for HR users, under /app: server-rendered pages in French.

It is a second door to the same rooms, not a second house: users sign in with their API
key, which is sealed in the session cookie and re-authenticated on every request by the
API's :class:`~attrition.security.clients.Authenticator` (revocation, expiry and rate limits
apply at once); roles are checked by the API's own dependencies (``deps.Predicteur``...);
forms are validated by the API's ``PredictionRequest`` and scored and recorded by
``PredictionService.predict`` with source ``web``; history is read with the API's audit
queries. Every POST form carries a per-session CSRF token. Errors become French pages
(same status and wording as the API's problem responses) and refused requests are recorded
like the API's.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from attrition.api.web import history, model, scoring, session
from attrition.api.web.rendering import STATIC_DIR
from attrition.api.web.session import SESSION_COOKIE
from attrition.config import Settings
from attrition.security.sessions import SESSION_MAX_AGE_S, KeySealer, session_signing_key

router = APIRouter()
for _pages in (session, scoring, history, model):
    router.include_router(_pages.router)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the pages, their static files and the session middleware to ``app``."""
    secret = settings.secret_key.get_secret_value()
    app.state.key_sealer = KeySealer(secret, max_age_s=SESSION_MAX_AGE_S)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_signing_key(secret),
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE_S,
        path="/app",
        same_site="strict",
        https_only=settings.is_prod,
    )
