"""Logging set-up: the access log's lines leave the request path in batches."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Iterator

import pytest

from attrition.config import Settings
from attrition.logs import JsonFormatter, configure_logging


class Recording(io.StringIO):
    """A stream that counts its writes (each one a system call on a real stderr)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recording]:
    recording = Recording()
    monkeypatch.setattr(sys, "stderr", recording)
    configure_logging(Settings(log_level="INFO"))
    try:
        yield recording
    finally:
        for handler in logging.getLogger().handlers:
            handler.close()
        logging.getLogger().handlers.clear()


def _wait_for(stream: Recording, count: int, mark: str = "", seconds: float = 2.0) -> list[str]:
    """The stream's lines containing ``mark``, once there are ``count`` of them."""
    deadline = time.monotonic() + seconds
    while True:
        lines = [line for line in stream.getvalue().splitlines() if mark in line]
        if len(lines) >= count or time.monotonic() >= deadline:
            return lines
        time.sleep(0.01)


def test_access_lines_are_written_in_batches(stream: Recording) -> None:
    """One line per request was one write (a system call) per request on the request path:
    the access log's lines are written together, a fraction of a second later at most."""
    access = logging.getLogger("attrition.access")
    for n in range(50):
        access.info("POST /v1/predictions 201 1.0 ms (requête r%02d, clé k)", n)
    lines = _wait_for(stream, 50, "(requête r")
    assert [line.split("requête ")[1][:3] for line in lines] == [f"r{n:02d}" for n in range(50)]
    # A line of the session's other tasks (a sealer's checkpoint, say) is written at once.
    others = len(stream.getvalue().splitlines()) - len(lines)
    assert stream.writes <= 5 + others


def test_other_lines_are_written_at_once_after_the_buffered_ones(stream: Recording) -> None:
    logging.getLogger("attrition.access").info("GET /health 200 0.1 ms")
    logging.getLogger("attrition.api").warning("base de données indisponible")
    lines = stream.getvalue().splitlines()  # no wait: written by the warning's own call
    assert [line.split(": ", 1)[1] for line in lines] == [
        "GET /health 200 0.1 ms",
        "base de données indisponible",
    ]


def test_buffered_lines_are_written_when_the_handler_closes(stream: Recording) -> None:
    logging.getLogger("attrition.access").info("GET /ready 200 0.1 ms")
    for handler in logging.getLogger().handlers:
        handler.close()  # as logging.shutdown() at exit
    assert stream.getvalue().endswith("GET /ready 200 0.1 ms\n")


def _logged_and_deferred(
    monkeypatch: pytest.MonkeyPatch, handler: logging.Handler, when_ns: int
) -> tuple[str, str]:
    """One access line written through ``logging``, and the same one deferred."""
    from attrition.logs import ACCESS_LOGGER, AccessBatchingHandler

    assert isinstance(handler, AccessBatchingHandler)
    args = ("POST", "/v1/predictions", 201, 1.25, "r1", "k1")
    extra = {"request_id": "r1", "client_request_id": None, "status": 201, "client": "k1"}
    monkeypatch.setattr(time, "time", lambda: when_ns / 1e9)
    monkeypatch.setattr(time, "time_ns", lambda: when_ns)
    logging.getLogger(ACCESS_LOGGER).info(ACCESS_FORMAT, *args, extra=extra)
    handler.flush()
    logged = sys.stderr.getvalue()
    handler.defer(ACCESS_FORMAT, args, extra)
    handler.flush()
    return logged, sys.stderr.getvalue()[len(logged) :]


ACCESS_FORMAT = "%s %s %s %.1f ms (requête %s, clé %s)"


@pytest.mark.parametrize("json_logs", [False, True])
def test_a_deferred_line_is_the_line_logging_writes(
    monkeypatch: pytest.MonkeyPatch, json_logs: bool
) -> None:
    """The access line is kept unformatted and formatted when written, in a batch (the
    formatting per request, among the request's other work, cost several percent of a
    worker's CPU): the text is the same as through ``logging``, to the millisecond."""
    recording = Recording()
    monkeypatch.setattr(sys, "stderr", recording)
    configure_logging(Settings(log_level="INFO"))
    try:
        (handler,) = logging.getLogger().handlers
        if json_logs:  # the format of APP_ENV=prod
            handler.setFormatter(JsonFormatter())
        logged, deferred = _logged_and_deferred(monkeypatch, handler, 1_700_000_000_987_654_321)
        assert logged.count("\n") == 1 and "requête r1, clé k1" in logged
        assert deferred == logged
        if json_logs:
            line = json.loads(deferred)
            assert line["request_id"] == "r1" and line["status"] == 201
            assert line["time"].startswith("2023-11-14T22:13:20.987654")
        else:
            assert ",987 INFO    attrition.access: POST /v1/predictions 201 1.2 ms" in deferred
    finally:
        for h in logging.getLogger().handlers:
            h.close()
        logging.getLogger().handlers.clear()


def _ours_only() -> None:
    """Leave the root logger only the service's handler (pytest adds its own for a test)."""
    from attrition.logs import AccessBatchingHandler

    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if isinstance(h, AccessBatchingHandler)]


def test_deferred_and_other_lines_keep_their_order(stream: Recording) -> None:
    from attrition.logs import access_handler

    _ours_only()
    access = logging.getLogger("attrition.access")
    handler = access_handler(access)
    assert handler is not None
    handler.defer("%s %s", ("GET", "/health"), {})
    access.info("GET /ready")
    handler.defer("%s %s", ("GET", "/metrics"), {})
    logging.getLogger("attrition.api").warning("base de données indisponible")
    handler.defer("%s %s", ("GET", "/v1/model"), {})
    for h in logging.getLogger().handlers:
        h.close()  # as logging.shutdown() at exit: what is held is written
    assert [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()] == [
        "GET /health",
        "GET /ready",
        "GET /metrics",
        "base de données indisponible",
        "GET /v1/model",
    ]


def test_lines_are_deferred_only_to_the_one_handler_that_would_write_them(
    stream: Recording,
) -> None:
    """Another handler (pytest's caplog, a file), a filter on the way, or a level that drops
    the line: the line goes through ``logging`` as any other, or nowhere."""
    from attrition.logs import access_handler

    _ours_only()
    access = logging.getLogger("attrition.access")
    root = logging.getLogger()
    assert access_handler(access) is root.handlers[0]
    extra = logging.StreamHandler(io.StringIO())
    root.addHandler(extra)
    assert access_handler(access) is None
    root.removeHandler(extra)
    access.addFilter(lambda record: True)
    assert access_handler(access) is None
    access.filters.clear()
    root.handlers[0].addFilter(lambda record: True)
    assert access_handler(access) is None
    root.handlers[0].filters.clear()
    access.setLevel(logging.WARNING)
    try:
        assert access_handler(access) is None
    finally:
        access.setLevel(logging.NOTSET)
    access.propagate = False
    try:
        assert access_handler(access) is None  # no handler would write it
    finally:
        access.propagate = True
    assert access_handler(access) is root.handlers[0]


def test_a_deferred_line_goes_through_the_record_factory(stream: Recording) -> None:
    """A record factory set by the operator (``logging.setLogRecordFactory``) makes the
    deferred lines' records too, as it makes every other."""
    from attrition.logs import access_handler

    _ours_only()
    handler = access_handler(logging.getLogger("attrition.access"))
    assert handler is not None
    previous = logging.getLogRecordFactory()

    def tagged(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.msg = f"[tagged] {record.msg}"
        return record

    logging.setLogRecordFactory(tagged)
    try:
        handler.defer("%s %s", ("GET", "/health"), {})
        handler.flush()
    finally:
        logging.setLogRecordFactory(previous)
    assert stream.getvalue().splitlines()[-1].endswith("attrition.access: [tagged] GET /health")
