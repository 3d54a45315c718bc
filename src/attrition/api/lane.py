"""The prediction lane: the plain ``POST /v1/predictions`` without FastAPI's per-request dispatch.

Under load, most of the service's CPU went to the framework around the prediction, not to the
prediction: for each request FastAPI's exception and exit-stack layers, routing, the request
handler, the dependency solver and the body field cost about as much as scoring, explaining
and recording together (bench/, ADR 19). The benchmark's floor is that framework doing only
validation; the service cannot come near it while it pays that dispatch again.

This pure ASGI layer, inside the edge middleware, serves the *plain* case itself: no query
string, a key presented, a JSON body that the route's own model (``PredictionRequest``)
accepts, and at most a well-formed ``Idempotency-Key``. Nothing it checks before that has any
effect, so anything else (a body the model refuses, a malformed header, a missing key...) is
handed to the FastAPI route untouched, with the body replayed: every refusal keeps the
route's exact answer and order of checks. Once the request is plain, the lane does what the
route does, with the route's own functions: the one sign-in check (``deps.authenticate``),
the role check, then ``routers.predictions.predict_one``; an error goes to the handler the app
registered for it (``problems.answer``), and an unexpected one is raised to the server error
layer, as from the route. ``tests/api/test_prediction_lane.py`` sends the same requests to an
app with the lane and one without (``ATTRITION_API__FAST_LANE=false``) and compares the
answers: status, body and headers.
"""

from __future__ import annotations

import re
from typing import Any

import pydantic
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attrition.api import problems
from attrition.api.deps import PREDICTION_ROLES, authenticate, check_role
from attrition.api.routers.predictions import (
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    predict_one,
)
from attrition.api.routing import loads
from attrition.api.schemas import PredictionRequest

PATH = "/v1/predictions"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


class PredictionLane:
    """Serves the plain ``POST /v1/predictions``; passes everything else to ``app``."""

    def __init__(self, app: ASGIApp, *, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled
        self.route: APIRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            self.enabled
            and scope["type"] == "http"
            and scope["path"] == PATH
            and scope["method"] == "POST"
            and not scope.get("query_string")
        ):
            await self.app(scope, receive, send)
            return
        messages = await _read(receive)
        replay = _replayer(messages, receive)
        plain = _plain(scope, messages)
        if plain is None:
            await self.app(scope, replay, send)
            return
        body, key, idempotency_key, raw = plain
        route = self.route or self._find_route(scope)
        # What routing would have put in the scope (the access log and metrics read the route).
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        request = Request(scope, replay, send)
        request._body = raw  # read once; record_rejection takes its excerpt from here
        response: Response | None
        try:
            client = check_role(await authenticate(request, key), PREDICTION_ROLES)
            response = await predict_one(request, body, client, idempotency_key)
        except Exception as exc:
            response = await problems.answer(request, exc)
            if response is None:
                raise
        await response(scope, replay, send)

    def _find_route(self, scope: Scope) -> APIRoute:
        for route in problems.leaf_routes(scope["app"].router.routes):
            if (
                isinstance(route, APIRoute)
                and route.path == PATH
                and "POST" in (route.methods or ())
            ):
                self.route = route
                return route
        raise LookupError(f"no POST {PATH} route")  # pragma: no cover - wired by create_app


async def _read(receive: Receive) -> list[Message]:
    """Every message of the request body (stops at a disconnect, which is kept)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replayer(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` again, then goes on with ``receive``."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _plain(
    scope: Scope, messages: list[Message]
) -> tuple[PredictionRequest, str, str | None, bytes] | None:
    """(body, key, Idempotency-Key, raw body) of a plain request, or None for the route.

    Reads the key as ``deps.presented_key`` does and the Idempotency-Key as the route's
    ``Header`` parameter does (the first one); validates the body with the route's model, on
    the same parsed JSON as the route class (``routing.loads``).
    """
    if messages[-1]["type"] != "http.request":
        return None  # disconnected: the route deals with it
    raw = b"".join(m.get("body", b"") for m in messages)
    authorization = api_key = idempotency_key = None
    for name, value in scope["headers"]:
        lowered = name.lower()
        if lowered == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif lowered == b"x-api-key" and api_key is None:
            api_key = value.decode("latin-1")
        elif lowered == b"idempotency-key" and idempotency_key is None:
            idempotency_key = value.decode("latin-1")
    key = None
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        credentials = credentials.strip()
        if scheme and credentials and scheme.lower() == "bearer":
            key = credentials
    key = key or api_key or None
    if key is None:
        return None
    if idempotency_key is not None and not (
        len(idempotency_key) <= IDEMPOTENCY_KEY_MAX and _IDEMPOTENCY_KEY.match(idempotency_key)
    ):
        return None
    try:
        data: Any = loads(raw)
        body = PredictionRequest.model_validate(data)
    except (ValueError, pydantic.ValidationError):
        return None
    return body, key, idempotency_key, raw
