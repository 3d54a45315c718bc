"""uvicorn's httptools protocol with a bound on the request line and headers (431 beyond).

httptools keeps a header it is reading in memory until the header ends, with no limit: a
single 30 MB header was accepted, and four of 50 MB grew a worker by 226 MB. uvicorn's
``h11_max_incomplete_event_size`` bounds only its (slower) h11 parser. This subclass counts
the bytes of each request's head as they arrive, before httptools buffers them: once the
request line and headers pass ``max_head_bytes`` (``ATTRITION_API__MAX_HEADER_BYTES``), the
connection gets a 431 (RFC 6585) and is closed, so a connection never holds more than that
bound plus one read (256 KiB) of head.

The count is per read: a read that ends one request and starts the next counts wholly for
the new one, which can only make a pipelined client's bound a little stricter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

log = logging.getLogger("attrition.edge")

#: Default bound of the request line plus headers (bytes); see docs/securite.md.
DEFAULT_MAX_HEAD_BYTES = 16_384

_observer: Callable[[str], None] | None = None
_last_log = [0.0, 0]  # time of the last warning, refusals since


def set_observer(observer: Callable[[str], None] | None) -> None:
    """Tell the metrics of this worker about refusals made here (before the application)."""
    global _observer
    _observer = observer


def refusal_body(limit: int) -> bytes:
    detail = f"La ligne de requête et les en-têtes dépassent la limite de {limit} octets au total."
    return orjson.dumps(
        {
            "type": "about:blank",
            "title": "En-têtes de requête trop volumineux",
            "status": 431,
            "detail": detail,
            "instance": None,
            "request_id": None,
            "errors": [{"champ": "en-têtes", "message": detail}],
        }
    )


def _note_refusal() -> None:
    if _observer is not None:
        _observer("en-tetes")
    # One warning a minute at most, with the count since the last one: a flood of oversized
    # requests must not become a flood of log lines.
    now = time.monotonic()
    _last_log[1] += 1
    if now - _last_log[0] >= 60.0:
        log.warning(
            "en-têtes de requête au-delà de la limite : %d refus (431) depuis la dernière note",
            _last_log[1],
        )
        _last_log[0], _last_log[1] = now, 0


class HeadWithBody:
    """One response's view of the connection: its head leaves with the first bytes of its
    body, in one write.

    uvicorn writes a response's status line and headers as soon as the application starts
    the response, then the body in a second write: two packets, and a client that wakes up
    on the first finds the head alone and must wait again for the body. Measured with the
    benchmark's client at concurrency 1: three answers of the prediction route in four were
    read in two goes, against one in twelve for the floor (whose body follows at once). Held
    here only when a body of known length follows (``Content-Length``, not ``HEAD``, not
    empty): a ``100 Continue``, a streamed (chunked) or empty answer is written as before.
    """

    __slots__ = ("_cycle", "_head_done", "_held", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._held: bytes | None = None
        self._head_done = False

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif not self._head_done and self._cycle.response_started:
            self._head_done = True  # uvicorn's first write once the response started
            cycle = self._cycle
            if (
                cycle.chunked_encoding is False
                and cycle.expected_content_length > 0
                and cycle.scope["method"] != "HEAD"
            ):
                self._held = data
                return
        self._transport.write(data)

    def close(self) -> None:
        if self._held is not None:  # the body never came (the application failed)
            self._transport.write(self._held)
            self._held = None
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that refuses a request head larger than ``max_head_bytes``."""

    max_head_bytes = DEFAULT_MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from attrition.config import get_settings

        self.max_head_bytes = get_settings().api.max_header_bytes
        self._head_bytes = 0
        self._in_head = True  # until the first request's headers are complete
        self._refused = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:  # a new cycle
            cycle.transport = HeadWithBody(self.transport, cycle)  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head and self._head_bytes + len(data) > self.max_head_bytes:
            # Feed what is allowed: a head that ends within the bound passes; otherwise 431.
            allowed = max(0, self.max_head_bytes - self._head_bytes)
            if allowed:
                self._head_bytes += allowed
                super().data_received(data[:allowed])
                if not self._in_head and not self._refused and not self.transport.is_closing():
                    super().data_received(data[allowed:])
                    return
            if self._in_head:
                self._refuse()
                return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)

    def _refuse(self) -> None:
        self._refused = True
        _note_refusal()
        body = refusal_body(self.max_head_bytes)
        head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/problem+json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        if not self.transport.is_closing():
            self.transport.write(b"".join(head))
            self.transport.close()
