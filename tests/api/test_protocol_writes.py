"""A response leaves in one write: its head with its body (api/protocol.py, HeadWithBody).

uvicorn wrote the status line and headers, then the body: two packets per answer, and the
client woke up twice for three answers of the prediction route in four (bench/). Counted
here by the kernel on the client's socket (``tcpi_data_segs_in``): on 127.0.0.1 one write
of a few kilobytes is one segment. This test failed before the change: 2 segments per
answer with a body.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator

import pytest

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import Settings
from attrition.db.engine import Database
from tests.helpers import Keys
from tests.reliability.server import Server, start_server

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO is Linux's")

#: ``struct tcp_info``: offset of ``tcpi_data_segs_in`` (Linux 4.6 and later).
DATA_SEGS_IN = 152


def data_segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, DATA_SEGS_IN)[0])


def exchange(sock: socket.socket, request: bytes, *, head_only: bool = False) -> bytes:
    """Send ``request`` and read exactly its answer (head, then Content-Length bytes)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the head"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if head_only:
        return head
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the end of the body"
        body += chunk
    assert len(body) == length
    return head + b"\r\n\r\n" + body


@pytest.fixture(scope="module")
def server(database: Database, settings: Settings, model_version: str) -> Iterator[Server]:
    started = start_server(database, settings, workers=1)
    yield started
    started.signal(signal.SIGTERM)
    started.wait(30)


def test_each_answer_with_a_body_is_one_segment(server: Server, keys: Keys) -> None:
    body = json.dumps(EXAMPLE_EMPLOYEE).encode()
    prediction = (
        b"POST /v1/predictions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + keys.predicteur.encode() + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        before = data_segments_in(sock)
        answers = [exchange(sock, b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n") for _ in range(10)]
        answers.append(exchange(sock, b"GET /v1/nowhere HTTP/1.1\r\nHost: t\r\n\r\n"))
        answers.append(exchange(sock, prediction))
        time.sleep(0.05)
        segments = data_segments_in(sock) - before
    assert [a.split(b" ", 2)[1] for a in answers] == [b"200"] * 10 + [b"404", b"201"]
    assert b'"probabilite_depart"' in answers[-1]
    assert segments == len(answers), f"{segments} segments for {len(answers)} answers"


def test_a_head_request_still_gets_its_head_at_once(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        head = exchange(sock, b"HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n", head_only=True)
        assert head.startswith(b"HTTP/1.1 ")
        # The connection is still usable: the next answer is whole.
        answer = exchange(sock, b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
