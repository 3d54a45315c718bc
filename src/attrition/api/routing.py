"""The route class of the ``/v1`` routers: key first, known query parameters, orjson bodies.

Before the body is read, a route that needs a key authenticates it (a client without a valid
key gets its 401 before any parsing, and its refusal costs no JSON work), and a query
parameter the route does not declare is refused (422): a misspelt ``?curseur=`` must not be
silently ignored.

JSON bodies are parsed by orjson, with the standard parser as fallback.

FastAPI parses a JSON body with the standard library's ``json.loads`` before validating it:
for a batch of 1,000 employees (1.3 MB) that is about 8 ms of pure Python, several times
what orjson takes. Valid JSON is parsed by orjson; anything orjson refuses goes through
``json.loads`` exactly as before, so that the lax tokens it accepts (``NaN``, ``Infinity``)
still reach validation and get an error naming their field, and malformed JSON raises the
same ``JSONDecodeError`` FastAPI turns into a 422. JSON nested deeper than
:data:`MAX_JSON_DEPTH` levels (orjson's own bound) is malformed JSON too: a 422 naming
``corps``, where the standard parser's ``RecursionError`` used to give a bare 400. One
difference: orjson reads an integer beyond 64 bits as a float; every integer field of the API
is bounded far below that, so such a value is refused with its field's range error either
way (tests/api/test_routing.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from attrition.api.translations import EMPTY_BODY
from attrition.errors import FieldError, ValidationError

#: Deepest nesting of a JSON body: orjson refuses more (``recursion limit exceeded``).
MAX_JSON_DEPTH = 1024
TOO_DEEP = f"structure imbriquée sur plus de {MAX_JSON_DEPTH} niveaux"


def loads(body: bytes) -> Any:
    """Parse a JSON body: orjson, else the standard parser; too deep is a JSONDecodeError.

    A body of blanks only is a JSONDecodeError that names it (:data:`EMPTY_BODY`), as an
    absent body is: "Expecting value" would send the client looking for a syntax error.
    """
    if not body.strip():
        raise json.JSONDecodeError(EMPTY_BODY, body.decode("utf-8", "replace"), 0)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc):
            raise json.JSONDecodeError(TOO_DEEP, body.decode("utf-8", "replace"), 0) from None
    try:
        return json.loads(body)
    except RecursionError:
        raise json.JSONDecodeError(TOO_DEEP, body.decode("utf-8", "replace"), 0) from None


class FastJSONRequest(Request):
    """A request whose ``json()`` tries orjson first."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class FastJSONRoute(APIRoute):
    """Route class for the routers that take JSON bodies (``APIRouter(route_class=...)``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        from attrition.api.deps import authenticate_request, current_client

        handler = super().get_route_handler()
        known = frozenset(_query_names(self.dependant))
        needs_key = _calls(self.dependant, current_client) or _takes_key(self.dependant)

        async def fast_json_handler(request: Request) -> Response:
            # Most requests have no query string: no QueryParams object to build for them.
            unknown = (
                [name for name in request.query_params if name not in known]
                if request.scope.get("query_string")
                else None
            )
            if unknown:
                allowed = ", ".join(sorted(known)) or "aucun"
                raise ValidationError(
                    f"Paramètre de requête inconnu : {unknown[0]} (paramètres acceptés : "
                    f"{allowed}).",
                    errors=[
                        FieldError(name, f"paramètre inconnu ; paramètres acceptés : {allowed}")
                        for name in unknown[:10]
                    ],
                )
            if needs_key:
                await authenticate_request(request)
            return await handler(FastJSONRequest(request.scope, request.receive, request._send))

        return fast_json_handler


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters ``dependant`` declares, with those of its dependencies."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _takes_key(dependant: Dependant) -> bool:
    """Whether a dependency of ``dependant`` is a key check (``deps.authorised``)."""
    return any(
        getattr(sub.call, "takes_key", False) or _takes_key(sub) for sub in dependant.dependencies
    )


def _calls(dependant: Dependant, function: Any) -> bool:
    """Whether ``function`` is among the dependencies of ``dependant``, at any depth."""
    return any(sub.call is function or _calls(sub, function) for sub in dependant.dependencies)
