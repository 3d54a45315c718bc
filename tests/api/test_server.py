"""Several workers, one listening socket each: connections are spread over the workers."""

from __future__ import annotations

import io
import os
import pickle
import re
import signal
import socket
import time
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import httpx
import psutil
import pytest

from attrition.api.server import ReusePortSocket, bind_reuse_port, reuse_port_supported
from attrition.config import Settings
from attrition.db.engine import Database
from tests.helpers import Keys
from tests.reliability.server import Server, start_server

pytestmark = pytest.mark.skipif(not reuse_port_supported(), reason="SO_REUSEPORT (Linux) only")


def _send_to_worker(sock: socket.socket) -> socket.socket:
    """What uvicorn does to hand a socket to a spawned worker: multiprocessing's pickler."""
    buffer = io.BytesIO()
    ForkingPickler(buffer).dump(sock)
    received = pickle.loads(buffer.getvalue())
    assert isinstance(received, socket.socket)
    return received


def test_a_socket_sent_to_a_worker_is_a_new_listener_on_the_same_address() -> None:
    parent = bind_reuse_port(socket.AF_INET, ("127.0.0.1", 0))
    with parent, _send_to_worker(parent) as child:
        assert isinstance(child, ReusePortSocket)
        assert child.fileno() != parent.fileno()
        assert child.getsockname() == parent.getsockname()
        assert child.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1


def test_listeners_on_one_port_share_the_connections() -> None:
    parent = bind_reuse_port(socket.AF_INET, ("127.0.0.1", 0))
    workers = [_send_to_worker(parent), _send_to_worker(parent)]
    for worker in workers:
        worker.listen(64)
        worker.setblocking(False)
    clients = [socket.create_connection(parent.getsockname()) for _ in range(32)]
    accepted = [0, 0]
    deadline = time.monotonic() + 5
    while sum(accepted) < len(clients) and time.monotonic() < deadline:
        for index, worker in enumerate(workers):
            try:
                conn, _ = worker.accept()
            except BlockingIOError:
                continue
            conn.close()
            accepted[index] += 1
    for s in [*clients, *workers, parent]:
        s.close()
    # The parent's socket never listens: every connection went to a worker's queue.
    assert sum(accepted) == 32
    assert min(accepted) > 0, accepted


HEALTH_200 = re.compile(
    r'^attrition_http_requests_total\{replica="[^"]+",method="GET",route="/health",status="200"\} '
    r"(\S+)$",
    re.M,
)


def _health_count(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=5).text
    match = HEALTH_200.search(text)
    assert match, text[:500]
    return float(match.group(1))


def _sockets(worker: psutil.Process, port: int, status: str) -> int:
    """How many of the worker's TCP sockets on ``port`` are in ``status``."""
    return sum(
        1
        for c in worker.net_connections(kind="tcp")
        if c.laddr and c.laddr.port == port and c.status == status
    )


def _listening_workers(server: Server) -> list[psutil.Process]:
    """The server's two workers, once both listen.

    /ready answers from the first worker up; a worker joins the port's group when its server
    starts, after importing the app.
    """
    main = psutil.Process(server.process.pid)
    workers = [p for p in main.children() if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 2
    deadline = time.monotonic() + 60
    while not all(_sockets(w, server.port, "LISTEN") for w in workers):
        assert time.monotonic() < deadline, "a worker never listened"
        time.sleep(0.05)
    return workers


def _connections_per_worker(workers: list[psutil.Process], port: int) -> list[int]:
    return [_sockets(w, port, "ESTABLISHED") for w in workers]


def test_two_workers_each_get_connections_and_stop_cleanly(
    database: Database, settings: Settings, model_version: str
) -> None:
    server = start_server(database, settings, workers=2)
    try:
        workers = _listening_workers(server)
        # Sixteen keep-alive clients that connect together, as a connection pool does.
        clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(16)]
        for client in clients:
            client.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        for client in clients:
            assert client.recv(65536).startswith(b"HTTP/1.1 200")
        held = _connections_per_worker(workers, server.port)
        for client in clients:
            client.close()
        assert sum(held) == 16
        assert min(held) > 0, held  # all on one worker: p = 2 / 2**16 with SO_REUSEPORT
        # Whichever worker answers the scrape, /metrics counts the requests of both.
        for _ in range(6):  # a new connection each time: both workers answer some scrapes
            assert _health_count(server.base_url) == 16
        shared = Path(workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
        assert shared == Path(workers[1].environ()["PROMETHEUS_MULTIPROC_DIR"])
        assert shared.is_dir() and any(shared.iterdir())
        server.signal(signal.SIGTERM)
        assert server.wait(30) == 0
        assert "Serveur arrêté proprement" in server.log.read_text(errors="replace")
        assert not shared.exists()  # no count survives into the next run
    finally:
        if server.process.poll() is None:
            server.kill()


def _cpus(worker: psutil.Process) -> set[int]:
    return set(os.sched_getaffinity(worker.pid))


@pytest.mark.skipif(
    not reuse_port_supported() or len(os.sched_getaffinity(0)) < 2, reason="Linux, 2 CPUs"
)
def test_each_worker_keeps_to_a_cpu_of_its_own_and_so_does_its_replacement(
    database: Database, settings: Settings, model_version: str
) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    server = start_server(database, settings, workers=2)
    try:
        workers = _listening_workers(server)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(len(_cpus(w)) != 1 for w in workers):
            time.sleep(0.1)  # the supervisor pins them once started
        pinned = [_cpus(w) for w in workers]
        assert pinned == [{allowed[0]}, {allowed[1]}] or pinned == [{allowed[1]}, {allowed[0]}]
        # A worker that dies is replaced (uvicorn's supervisor) on the same CPU.
        cpu = pinned[0]
        workers[0].kill()
        workers[0].wait(10)
        replacement = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            main = psutil.Process(server.process.pid)
            fresh = [
                p
                for p in main.children()
                if "spawn_main" in " ".join(p.cmdline()) and p.pid != workers[1].pid
            ]
            if fresh and _cpus(fresh[0]) == cpu:
                replacement = fresh[0]
                break
            time.sleep(0.2)
        assert replacement is not None, "the new worker was not pinned to the dead one's CPU"
        assert _cpus(workers[1]) == pinned[1]
        server.signal(signal.SIGTERM)  # a clean stop removes the workers' shared folder
        assert server.wait(30) == 0
    finally:
        if server.process.poll() is None:
            server.kill()


@pytest.mark.skipif(
    not reuse_port_supported() or len(os.sched_getaffinity(0)) < 2, reason="Linux, 2 CPUs"
)
def test_workers_are_left_to_the_scheduler_when_told(
    database: Database, settings: Settings, model_version: str
) -> None:
    server = start_server(database, settings, workers=2, env={"ATTRITION_PIN_WORKERS": "false"})
    try:
        workers = _listening_workers(server)
        time.sleep(1.5)  # three of the supervisor's checks
        assert [_cpus(w) for w in workers] == [set(os.sched_getaffinity(0))] * 2
        server.signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        if server.process.poll() is None:
            server.kill()


def test_two_workers_share_one_rate_limit_per_key(
    database: Database, settings: Settings, model_version: str, keys: Keys
) -> None:
    """20 requests a minute for a key, whichever worker its connections reach."""
    server = start_server(database, settings, workers=2, rate_limit_per_minute=20)
    try:
        workers = _listening_workers(server)
        clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(16)]
        request = (
            f"GET /v1/model HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {keys.auditeur}\r\n\r\n"
        ).encode()
        statuses = []
        for n in range(32):
            client = clients[n % len(clients)]
            client.sendall(request)
            statuses.append(_read_status(client))
        spread = _connections_per_worker(workers, server.port)
        for client in clients:
            client.close()
        assert sum(spread) == 16 and min(spread) > 0, spread  # both workers answered
        # Each worker alone would have let 20 through, up to 32 in all.
        assert statuses.count(200) == 20, statuses
        assert statuses.count(429) == 12
    finally:
        server.signal(signal.SIGTERM)
        server.wait(30)


def _read_status(client: socket.socket) -> int:
    """Status of one keep-alive response, its body read by Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += client.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    assert match, head
    length = int(match.group(1))
    while len(body) < length:
        body += client.recv(65536)
    return int(head[9:12])
