"""The one place where errors become HTTP problems (RFC 9457, application/problem+json).

Domain errors map to a status by class; Pydantic validation errors are translated into French
with the field path and, in a batch, the row index. Every refused exchange is also recorded in
``rejected_requests`` (best effort: a database outage must not hide the original error, and a
503 caused by the database itself is only logged). The OpenAPI document is made to say so:
errors are ``application/problem+json``. Nothing here leaks a stack trace or SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from attrition import errors as e
from attrition.api.translations import translate

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PAYLOAD_EXCERPT_BYTES = 2048

STATUS: dict[type[e.AttritionError], tuple[int, str]] = {
    e.ValidationError: (422, "Entrée invalide"),
    e.NotFoundError: (404, "Introuvable"),
    e.ConflictError: (409, "Conflit"),
    e.AuthenticationError: (401, "Authentification requise"),
    e.PermissionDeniedError: (403, "Accès refusé"),
    e.RateLimitedError: (429, "Trop de requêtes"),
    e.ModelNotReadyError: (503, "Modèle indisponible"),
    e.DatabaseUnavailableError: (503, "Base de données indisponible"),
    e.ArtifactIntegrityError: (503, "Modèle refusé"),
    e.ConfigurationError: (500, "Erreur de configuration"),
}

HTTP_TITLES = {
    400: "Requête invalide",
    401: "Authentification requise",
    403: "Accès refusé",
    404: "Introuvable",
    405: "Méthode non autorisée",
    409: "Conflit",
    413: "Requête trop volumineuse",
    415: "Type de contenu non pris en charge",
    422: "Entrée invalide",
    429: "Trop de requêtes",
    500: "Erreur interne",
    503: "Service indisponible",
}


@dataclass(frozen=True, slots=True)
class ProblemPolicy:
    """What a domain error becomes at the edge, for the API and the web pages alike."""

    status: int
    title: str
    errors: list[dict[str, Any]]
    headers: dict[str, str]
    #: Whether the refusal is written to ``rejected_requests``. Not when the database is the
    #: fault: recording would fail too, after waiting for a connection, and delay the 503
    #: the client should get at once.
    record: bool


def problem_for(exc: e.AttritionError) -> ProblemPolicy:
    """Status, title, field errors, headers and recording of a domain error: the one policy."""
    status, title = next(
        (v for k, v in STATUS.items() if isinstance(exc, k)), (500, "Erreur interne")
    )
    headers = {}
    if isinstance(exc, e.RateLimitedError):
        headers.update(exc.headers)  # RateLimit-* of a quota
    if isinstance(exc, e.RateLimitedError | e.DatabaseUnavailableError):
        headers["Retry-After"] = str(exc.retry_after)
    elif status == 503:
        headers["Retry-After"] = "5"
    recordable = not isinstance(exc, e.DatabaseUnavailableError)
    return ProblemPolicy(
        status=status,
        title=title,
        errors=[err.as_dict() for err in exc.errors],
        headers=headers,
        record=recordable and (status in (401, 403, 422, 429) or status >= 500),
    )


def database_unavailable() -> e.DatabaseUnavailableError:
    """What a lost connection or an exhausted pool becomes, wherever it surfaces."""
    return e.DatabaseUnavailableError(
        "La base de données est indisponible ou trop lente : réessayez dans quelques secondes."
    )


class BodyTooLarge(Exception):
    """A body over the size limit, raised by the edge middleware while it reads the stream."""


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    request: Request | None = None,
    errors: Sequence[dict[str, Any]] = (),
    headers: dict[str, str] | None = None,
    total_errors: int | None = None,
) -> Response:
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    body = {
        "type": "about:blank",
        "title": title or HTTP_TITLES.get(status, "Erreur"),
        "status": status,
        "detail": detail,
        "instance": request.url.path if request is not None else None,
        "request_id": request_id,
        "errors": list(errors),
    }
    if total_errors is not None and total_errors > len(errors):
        body["nombre_erreurs"] = total_errors
    out_headers = dict(headers or {})
    if status in (401,):
        out_headers.setdefault("WWW-Authenticate", 'Bearer realm="attrition"')
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=out_headers
    )


def _excerpt(body: Any) -> str | None:
    if body is None:
        return None
    if isinstance(body, bytes | bytearray):
        text = bytes(body[:PAYLOAD_EXCERPT_BYTES]).decode("utf-8", "replace")
    else:
        try:
            text = orjson.dumps(body, default=str).decode()
        except TypeError:  # nested deeper than orjson writes (254 levels)
            text = "(corps trop imbriqué pour être recopié)"
    return text[:PAYLOAD_EXCERPT_BYTES]


async def record_rejection(
    request: Request, status: int, errors: list[dict[str, Any]], body: Any = None
) -> None:
    """Best-effort write of a refused exchange to ``rejected_requests``."""
    recorder = getattr(request.app.state, "rejections", None)
    if recorder is None:
        return
    client = getattr(request.state, "client", None)
    route = request.scope.get("route")
    await recorder(
        client_ip=request.client.host if request.client else None,
        request_id=getattr(request.state, "request_id", "-"),
        client_request_id=getattr(request.state, "client_request_id", None),
        api_key_id=client.id if client is not None else None,
        method=request.method,
        route=getattr(route, "path", request.url.path)[:255],
        status=status,
        errors=errors,
        payload_excerpt=_excerpt(body),
    )


#: Answers the edge can give on any operation of the API, documented on each one (OpenAPI).
EDGE_RESPONSES: dict[str, tuple[str, Any]] = {
    "413": ("Corps de requête trop volumineux.", ("post", "put", "patch")),
    "415": (
        "Le corps doit être du JSON (Content-Type: application/json).",
        ("post", "put", "patch"),
    ),
    "503": (
        "Base de données ou modèle indisponible (voir Retry-After) : rien n'a été enregistré.",
        None,
    ),
}


def document_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI document say what the handlers above really send.

    Every error is served as ``application/problem+json`` with the ``Problem`` schema (not as
    FastAPI's default ``application/json`` / ``HTTPValidationError``), and every operation of
    ``/v1`` documents the answers of the edge: 413 and 415 (middleware) on writes, 503 when
    the database is unreachable (authentication reads it) on all of them.
    """
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    refs = ("#/components/schemas/Problem", "#/components/schemas/HTTPValidationError")
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                if status[0] in "45" and schema.get("$ref") in refs:
                    response["content"] = {PROBLEM_JSON: {"schema": problem_ref}}
            if not path.startswith("/v1/"):
                continue
            for status, (description, methods) in EDGE_RESPONSES.items():
                if methods is None or method in methods:
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {PROBLEM_JSON: {"schema": problem_ref}},
                        },
                    )
    schemas = spec.get("components", {}).get("schemas", {})
    text = orjson.dumps(spec.get("paths", {})).decode()
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in schemas and f'/{unused}"' not in text:
            del schemas[unused]
    return spec


def leaf_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """The routes themselves: recent FastAPI keeps an included router as one entry (without
    ``methods``) that wraps the router's own routes; every router here is included without
    a prefix, so its routes match the request's path as they are."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from leaf_routes(inner.routes)
        else:
            yield route


def allowed_methods(request: Request) -> list[str]:
    """Every method the requested path accepts (RFC 9110, 15.5.6), across all its routes.

    Starlette's 405 lists only the methods of the first route that matched the path, so a
    path served by two routes (GET and POST /v1/predictions) would advertise half of them.
    """
    methods: set[str] = set()
    for route in leaf_routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


async def answer(request: Request, exc: Exception) -> Response | None:
    """The response of the handler ``request.app`` registered for ``exc``, as routing gives it.

    The handlers are looked up along the exception's classes, as Starlette's exception layer
    does. ``None`` for an error no specific handler takes (the catch-all ``Exception`` one
    belongs to the server error layer, which also logs it): the caller raises it there.
    """
    handlers = request.app.exception_handlers
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        handler = handlers.get(cls)
        if handler is not None:
            return await handler(request, exc)
    return None  # pragma: no cover - every exception derives from Exception


def install(app: FastAPI, generate: Callable[[], dict[str, Any]] | None = None) -> None:
    """Register the handlers that turn every error into a problem response.

    The OpenAPI description (``generate``, by default FastAPI's) gets the problem responses.
    """
    generate = generate or app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # A batch of 1,000 bad rows has tens of thousands of errors: list the first ones and
        # say how many there are (an 11 KB request used to get a 2.3 MB answer).
        limit = request.app.state.settings.api.max_errors_listed
        raw = exc.errors()
        items = translate(raw[:limit])
        stored = items
        if len(raw) > limit:
            note = f"{len(raw)} erreurs au total ; les {limit} premières sont listées"
            stored = [*items, {"champ": "-", "message": note}]
        await record_rejection(request, 422, stored, exc.body)
        first = items[0] if items else {"champ": "corps", "message": "entrée invalide"}
        where = f" (ligne {first['ligne']})" if "ligne" in first else ""
        detail = f"Entrée invalide : {first['champ']}{where} : {first['message']}" + (
            f" (et {len(raw) - 1} autre(s) erreur(s))" if len(raw) > 1 else ""
        )
        return problem(422, detail, request=request, errors=items, total_errors=len(raw))

    @app.exception_handler(e.AttritionError)
    async def _domain(request: Request, exc: e.AttritionError) -> Response:
        policy = problem_for(exc)
        if policy.record:
            await record_rejection(
                request,
                policy.status,
                policy.errors or [{"champ": "-", "message": exc.message}],
            )
        return problem(
            policy.status,
            exc.message,
            title=policy.title,
            request=request,
            errors=policy.errors,
            headers=policy.headers,
        )

    async def _database(request: Request, exc: Exception) -> Response:
        log.warning(
            "base de données indisponible sur %s : %s", request.url.path, type(exc).__name__
        )
        return await _domain(request, database_unavailable())

    app.add_exception_handler(psycopg.OperationalError, _database)
    app.add_exception_handler(PoolTimeout, _database)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = {
            400: "Corps de requête illisible.",
            404: "Ressource introuvable.",
            405: "Méthode non autorisée pour cette ressource.",
        }.get(exc.status_code, str(exc.detail))
        if exc.status_code == 400 and isinstance(exc.__cause__, BodyTooLarge):
            raise exc.__cause__  # a chunked body over the limit: the edge middleware says 413
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            # The standard parser (routes without FastJSONRoute): too deep is malformed JSON.
            items = [{"champ": "corps", "message": "JSON invalide (structure trop imbriquée)"}]
            await record_rejection(request, 422, items)
            detail = "Entrée invalide : corps : JSON invalide (structure trop imbriquée)"
            return problem(422, detail, request=request, errors=items)
        if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            # A JSON body that is not even text (invalid UTF-8): malformed JSON like any other,
            # so it gets the same answer: 422, in French, recorded.
            items = [{"champ": "corps", "message": "JSON invalide (le corps n'est pas en UTF-8)"}]
            await record_rejection(request, 422, items)
            detail = "Entrée invalide : corps : JSON invalide (le corps n'est pas en UTF-8)"
            return problem(422, detail, request=request, errors=items)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem(exc.status_code, detail, request=request, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("erreur non traitée sur %s %s", request.method, request.url.path)
        await record_rejection(request, 500, [{"champ": "-", "message": type(exc).__name__}])
        return problem(
            500,
            "Erreur interne du service ; elle a été journalisée avec l'identifiant de requête.",
            request=request,
        )
