"""Dependencies, declared once as ``Annotated`` aliases and chained.

``CurrentClient`` authenticates (Bearer or X-API-Key; both are declared security schemes so
Swagger UI's "Authorize" works); ``require(*roles)`` is one more dependency on top of it.
"""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from attrition.config import Settings
from attrition.errors import DatabaseUnavailableError, PermissionDeniedError
from attrition.model.runtime import ModelRuntime
from attrition.security.clients import Authenticator, Client

bearer = HTTPBearer(auto_error=False, description="Clé API : `Authorization: Bearer ftr_…`")
api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Clé API dans l'en-tête X-API-Key."
)


# These are ``async def`` although they do no I/O: FastAPI runs a plain ``def`` dependency in
# its thread pool, a thread hop per request on the hot path (measured in bench/).
async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_pool(request: Request) -> AsyncConnectionPool[Any]:
    return request.app.state.pool


async def get_runtime(request: Request) -> ModelRuntime:
    return request.app.state.runtime


def _state(request: Request) -> dict[str, Any]:
    """The request's state (``request.state``'s own dict), without a ``State`` object per
    ``Request`` object: FastAPI and the route class make several for one request."""
    return request.scope.setdefault("state", {})


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
PoolDep = Annotated[AsyncConnectionPool[Any], Depends(get_pool)]
RuntimeDep = Annotated[ModelRuntime, Depends(get_runtime)]


async def authenticate(request: Request, raw: str | None) -> Client:
    """The one sign-in check, for the API (a header) and the web (the key in the session).

    Revocation, expiry and rate limits apply at once; a database outage is a 503.
    """
    authenticator: Authenticator = request.app.state.authenticator
    # The peer, or the client behind a trusted proxy (ATTRITION_API__TRUSTED_PROXIES).
    ip = request.client.host if request.client else "inconnue"
    try:
        client = await authenticator.authenticate(raw, ip)
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise DatabaseUnavailableError(
            "La base de données est indisponible : authentification impossible."
        ) from exc
    _state(request)["client"] = client
    return client


def presented_key(request: Request) -> str | None:
    """The key a request presents, read as ``current_client``'s two security schemes read it.

    A well-formed ``Authorization: Bearer <key>`` (scheme in any case) wins; otherwise the
    ``X-API-Key`` header; an empty value is no key. The same rules as FastAPI's ``HTTPBearer``
    and ``APIKeyHeader`` (``auto_error=False``), without their two awaited calls and their
    credentials object on every prediction (tests/api/test_edge_contract.py).
    """
    headers = request.headers
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme and credentials and scheme.lower() == "bearer":
            return credentials
    return headers.get("x-api-key") or None


async def authenticate_request(request: Request) -> Client:
    """Authenticate the key of ``request`` once (the route class calls it before the body)."""
    already: Client | None = _state(request).get("client")
    if already is not None:
        return already
    return await authenticate(request, presented_key(request))


async def current_client(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    header_key: Annotated[str | None, Security(api_key_header)],
) -> Client:
    already: Client | None = _state(request).get("client")
    if already is not None:  # authenticated by the route class before the body was read
        return already
    raw = credentials.credentials if credentials is not None else header_key
    return await authenticate(request, raw)


CurrentClient = Annotated[Client, Depends(current_client)]


def check_role(client: Client, roles: tuple[str, ...]) -> Client:
    """``client``, if its role is one of ``roles``; otherwise the 403 that says which are."""
    if client.role not in roles:
        allowed = ", ".join(roles)
        raise PermissionDeniedError(
            f"Le rôle « {client.role} » ne permet pas cette opération (rôles autorisés : "
            f"{allowed})."
        )
    return client


def require(*roles: str) -> Any:
    """A dependency that lets through only clients whose role is in ``roles``."""

    async def check(client: CurrentClient) -> Client:
        return check_role(client, roles)

    return Depends(check)


#: The OpenAPI security requirement that ``Security(bearer)`` and ``Security(api_key_header)``
#: give a route; declared by hand (``openapi_extra``) on routes guarded by :func:`authorised`.
KEY_SECURITY: dict[str, Any] = {"security": [{"HTTPBearer": []}, {"APIKeyHeader": []}]}


def authorised(*roles: str) -> Any:
    """:func:`require` in one dependency, for the prediction routes (the hot path).

    ``require`` chains four dependencies (role, client, Bearer header, X-API-Key header) that
    FastAPI solves on every request, although the route class has already authenticated the
    key before reading the body. This one takes that client (or authenticates the request
    itself if the route class did not) and checks the role, in one step: same refusals, same
    messages. The route declares :data:`KEY_SECURITY` for its OpenAPI description.
    """

    async def key_and_role(request: Request) -> Client:
        client: Client | None = _state(request).get("client")
        if client is None:
            client = await authenticate_request(request)
        return check_role(client, roles)

    key_and_role.takes_key = True  # type: ignore[attr-defined]  # read by api.routing
    return Depends(key_and_role)


Predicteur = Annotated[Client, require("predicteur", "admin")]
Lecteur = Annotated[Client, require("predicteur", "auditeur", "admin")]
Auditeur = Annotated[Client, require("auditeur", "admin")]
Admin = Annotated[Client, require("admin")]
Rh = Annotated[Client, require("rh", "admin")]
#: The roles that may ask for predictions.
PREDICTION_ROLES = ("predicteur", "admin")
#: ``Predicteur`` for the prediction routes: one dependency (see :func:`authorised`).
PredicteurRapide = Annotated[Client, authorised(*PREDICTION_ROLES)]
