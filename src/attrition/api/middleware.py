"""Pure ASGI middleware: request id, body size limit, content type, security headers.

Written as raw ASGI (not ``BaseHTTPMiddleware``) because it runs on every request: no extra
task per request, no buffering of the body.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from attrition.api.problems import PROBLEM_JSON, BodyTooLarge

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

_DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:; frame-ancestors {ancestors}"
)
_API_CSP = "default-src 'none'; frame-ancestors 'none'"


def page_headers(frame_ancestors: list[str] | tuple[str, ...] = ()) -> list[tuple[bytes, bytes]]:
    """CSP (and X-Frame-Options) of the HTML pages: framed only by ``frame_ancestors``.

    With no origin, no one may frame them (``'none'`` and ``DENY``). With origins, the CSP
    names them and X-Frame-Options is left out: it cannot name an origin, and a browser that
    knows ``frame-ancestors`` ignores it anyway.
    """
    ancestors = " ".join(frame_ancestors) or "'none'"
    headers = [(b"content-security-policy", _DOCS_CSP.format(ancestors=ancestors).encode())]
    if not frame_ancestors:
        headers.append((b"x-frame-options", b"DENY"))
    return headers


_API_HEADERS = [
    (b"content-security-policy", _API_CSP.encode()),
    (b"x-frame-options", b"DENY"),
]


def new_request_id() -> str:
    """A random UUID (version 4) as 32 hex digits: ``uuid.uuid4().hex``, without the UUID object."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def _problem_bytes(status: int, title: str, detail: str, path: str, request_id: str) -> bytes:
    return orjson.dumps(
        {
            "type": "about:blank",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": path,
            "request_id": request_id,
            "errors": [{"champ": "corps", "message": detail}],
        }
    )


async def _record_rejection(scope: Scope, request_id: str, status: int, detail: str) -> None:
    """Refused here, before routing, it still goes to ``rejected_requests`` like any other.

    The key is not checked yet (no client id) and the body is not read (no excerpt).
    """
    recorder = getattr(getattr(scope.get("app"), "state", None), "rejections", None)
    if recorder is not None:
        client = scope.get("client")
        await recorder(
            client_ip=client[0] if client else None,
            request_id=request_id,
            client_request_id=scope.get("state", {}).get("client_request_id"),
            api_key_id=None,
            method=scope["method"],
            route=scope["path"][:255],
            status=status,
            errors=[{"champ": "corps", "message": detail}],
            payload_excerpt=None,
        )


class EdgeMiddleware:
    """Assigns the request id, enforces size and content type, adds security headers.

    The pages (``is_page``) go through their own layers (``pages``, their sessions) on the
    way in; every other request goes straight to the app.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        hsts: bool,
        metrics: Any = None,
        frame_ancestors: list[str] | tuple[str, ...] = (),
        pages: Callable[[ASGIApp], ASGIApp] | None = None,
        is_page: Callable[[str], bool] | None = None,
    ) -> None:
        self.app = app
        # The pages' own layers (their sessions), around the same app, for their paths only.
        self.pages = pages(app) if pages is not None else None
        self.is_page = is_page
        self.page_headers = page_headers(frame_ancestors)
        self.max_body = max_body_bytes
        self.hsts = hsts
        self.metrics = metrics
        # The headers every response gets after its two request ids, computed once: one list
        # for the pages, one for the API (a copy is extended per response, nothing rebuilt).
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-store"),
        ]
        tail = (
            [(b"strict-transport-security", b"max-age=31536000; includeSubDomains")] if hsts else []
        )
        self.page_extra = (*common, *self.page_headers, *tail)
        self.api_extra = (*common, *_API_HEADERS, *tail)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The four request headers read here, in one pass (the last one wins, as in a dict).
        given = ""
        length: str | None = None
        ctype_raw = ""
        chunked = False
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.lower()
            if name == b"x-request-id":
                given = raw_value.decode("latin-1")
            elif name == b"content-length":
                length = raw_value.decode("latin-1")
            elif name == b"content-type":
                ctype_raw = raw_value.decode("latin-1")
            elif name == b"transfer-encoding":
                chunked = True
        # The audit trail's request id is always the server's; the client's own X-Request-ID
        # (if well-formed) is kept apart and echoed, so that two clients cannot share an id.
        request_id = new_request_id()
        client_request_id = given if _REQUEST_ID_RE.match(given) else None
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["client_request_id"] = client_request_id
        echoed = (client_request_id or request_id).encode()
        server_id = request_id.encode()
        path: str = scope["path"]
        is_page = path in ("/", "/docs", "/redoc") or path.startswith(("/app", "/static", "/guide"))
        extra = self.page_extra if is_page else self.api_extra
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def reply(status: int, title: str, detail: str) -> None:
            body = _problem_bytes(status, title, detail, path, request_id)
            await send_wrapper(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", PROBLEM_JSON.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_wrapper({"type": "http.response.body", "body": body})
            await _record_rejection(scope, request_id, status, detail)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", echoed),
                    (b"x-server-request-id", server_id),
                    *extra,
                ]
            await send(message)

        method = scope["method"]
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await reply(
                413,
                "Requête trop volumineuse",
                f"Le corps de la requête dépasse la limite de {self.max_body} octets.",
            )
            return
        if method in ("POST", "PUT", "PATCH") and path.startswith("/v1/"):
            ctype = ctype_raw.split(";")[0].strip().lower()
            has_body = length not in (None, "0") or chunked
            if has_body and ctype != "application/json":
                await reply(
                    415,
                    "Type de contenu non pris en charge",
                    "Le corps doit être du JSON (Content-Type: application/json).",
                )
                return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge
            return message

        inner = self.app
        if self.pages is not None and self.is_page is not None and self.is_page(path):
            inner = self.pages
        try:
            await inner(scope, limited_receive, send_wrapper)
        except BodyTooLarge:
            await reply(
                413,
                "Requête trop volumineuse",
                f"Le corps de la requête dépasse la limite de {self.max_body} octets.",
            )
        finally:
            if self.metrics is not None:
                route = scope.get("route")
                self.metrics.observe_request(
                    method,
                    getattr(route, "path", "inconnue"),
                    status_holder["status"],
                    time.perf_counter() - started,
                    scope=scope,  # request id and client, for the access log line
                )
