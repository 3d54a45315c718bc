"""Logging set-up: the access log's lines leave the request path in batches."""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Iterator

import pytest

from attrition.config import Settings
from attrition.logs import configure_logging


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
