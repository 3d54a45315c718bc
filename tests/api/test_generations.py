"""Real servers on 127.0.0.1 (issue 16): one generation at a time, bounded headers, proxies.

Each test here failed on the code before the fix: orphaned workers kept serving after their
supervisor was killed, a second server joined the port of a running one, a 30 MB header got
a 200, and a client on 127.0.0.1 escaped throttling with a fresh X-Forwarded-For.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from attrition.api.server import reuse_port_supported
from attrition.config import PROJECT_ROOT, Settings
from attrition.db.engine import Database
from attrition.security.keys import generate_key
from tests.helpers import Keys
from tests.reliability.server import Server, free_port, start_server

pytestmark = pytest.mark.skipif(not reuse_port_supported(), reason="Linux only (prctl, flock)")


def _answers(port: int) -> bool:
    """Whether anything accepts a connection on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _listeners(port: int) -> set[int]:
    """Pids of the processes with a listening socket on ``port``."""
    pids = set()
    for proc in psutil.process_iter():
        try:
            for c in proc.net_connections(kind="tcp"):
                if c.status == "LISTEN" and c.laddr and c.laddr.port == port:
                    pids.add(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return pids


def _workers(server: Server) -> list[psutil.Process]:
    main = psutil.Process(server.process.pid)
    workers = [p for p in main.children() if "spawn_main" in " ".join(p.cmdline())]
    assert len(workers) == 2
    deadline = time.monotonic() + 60
    while _listeners(server.port) != {w.pid for w in workers}:
        assert time.monotonic() < deadline, "the workers never listened"
        time.sleep(0.1)
    return workers


def test_killing_the_supervisor_ends_its_generation(
    database: Database, settings: Settings, model_version: str
) -> None:
    old = start_server(database, settings, workers=2)
    new: Server | None = None
    workers: list[psutil.Process] = []
    try:
        workers = _workers(old)
        old.kill()  # SIGKILL: the supervisor has no chance to stop its workers itself
        killed_at = time.monotonic()
        while _answers(old.port) and time.monotonic() - killed_at < 5:
            time.sleep(0.05)
        assert time.monotonic() - killed_at < 2.0, "orphaned workers kept serving"
        assert not _answers(old.port)
        _gone, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive, [p.pid for p in alive]
        new = start_server(database, settings, port=old.port, workers=2)
        new_workers = _workers(new)
        assert _listeners(new.port) == {w.pid for w in new_workers}
        for _ in range(8):  # a new connection each time: only the new workers answer
            assert httpx.get(f"{new.base_url}/health", timeout=5).status_code == 200
    finally:
        for server in (old, new):
            if server is not None and server.process.poll() is None:
                server.signal(signal.SIGTERM)
                server.wait(30)
        _kill_orphans(workers)


def _kill_orphans(workers: list[psutil.Process]) -> None:
    """Workers that outlived their supervisor (the defect under test): ended by pid."""
    for worker in workers:
        if worker.is_running():
            worker.kill()


def test_a_second_server_on_the_same_address_refuses_to_start(
    database: Database, settings: Settings, model_version: str
) -> None:
    first = start_server(database, settings, workers=2)
    try:
        second = start_server(database, settings, port=first.port, workers=2, wait=False)
        try:
            assert second.wait(60) != 0
        finally:
            if second.process.poll() is None:
                children = psutil.Process(second.process.pid).children(recursive=True)
                second.signal(signal.SIGTERM)
                second.wait(30)
                _kill_orphans(children)
        log = second.log.read_text(errors="replace")
        assert f"L'adresse 127.0.0.1:{first.port} est déjà utilisée" in log, log[-2000:]
        assert httpx.get(f"{first.base_url}/health", timeout=5).status_code == 200
    finally:
        first.signal(signal.SIGTERM)
        first.wait(30)


def test_a_second_server_on_the_same_data_folder_refuses_to_start(tmp_path: Path) -> None:
    from attrition.api.server import claim_data_folder

    pgdata = tmp_path / "pgdata"
    held = claim_data_folder(pgdata)  # as a running generation holds it
    try:
        env = {
            "APP_ENV": "test",
            "ATTRITION_PGDATA": str(pgdata),
            "PATH": str(Path(sys.executable).parent),
            "COLUMNS": "500",  # one line per message
        }
        command = [str(Path(sys.executable).with_name("attrition")), "serve", "--no-train",
                   "--host", "127.0.0.1", "--port", str(free_port())]  # fmt: skip
        done = subprocess.run(
            command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
        )
    finally:
        held.close()
    assert done.returncode != 0
    assert f"utilise déjà ce dossier de données ({pgdata})" in done.stderr, done.stderr
    assert not pgdata.exists()  # refused before PostgreSQL was started


def _send_head(port: int, size: int) -> bytes:
    """Send a GET with one header of ``size`` bytes; the start of the answer (or b"")."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: ")
        chunk = b"a" * 65536
        sent = 0
        try:
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # the server closed the connection early: what a bound looks like
        try:
            return sock.recv(4096)
        except OSError:
            return b""


def test_oversized_headers_get_431_and_memory_stays_bounded(
    database: Database, settings: Settings, model_version: str
) -> None:
    server = start_server(database, settings, workers=1)
    try:
        # Just over the bound: the answer is a 431, in French, before any application code.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
            )
            answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert "en-têtes dépassent la limite de 16384 octets".encode() in answer
        process = psutil.Process(server.process.pid)
        before = process.memory_info().rss
        threads = [threading.Thread(target=_send_head, args=(server.port, 30_000_000))
                   for _ in range(4)]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        grown = process.memory_info().rss - before
        assert grown < 30_000_000, f"the worker grew by {grown / 1e6:.0f} MB"
        started = time.monotonic()
        assert httpx.get(f"{server.base_url}/health", timeout=5).status_code == 200
        assert time.monotonic() - started < 1.0
        metrics = httpx.get(f"{server.base_url}/metrics", timeout=5).text
        assert (
            f'attrition_edge_refusals_total{{replica="{settings.replica}",reason="en-tetes"}} 5.0'
            in metrics
        )
    finally:
        server.signal(signal.SIGTERM)
        server.wait(30)


def test_forwarded_for_from_an_untrusted_local_peer_is_ignored(
    database: Database, settings: Settings, model_version: str, keys: Keys
) -> None:
    server = start_server(database, settings, env={"ATTRITION_API__AUTH_FAILURES_PER_MINUTE": "3"})
    try:
        with httpx.Client(base_url=server.base_url, timeout=5) as client:
            codes = [
                client.get(
                    "/v1/model",
                    headers={
                        "X-Forwarded-For": f"198.51.100.{n}",
                        "Authorization": f"Bearer {generate_key().full}",
                    },
                ).status_code
                for n in range(5)
            ]
            assert codes == [401, 401, 401, 429, 429]
            ok = client.get("/v1/model", headers={"Authorization": f"Bearer {keys.auditeur}"})
            assert ok.status_code == 200
    finally:
        server.signal(signal.SIGTERM)
        server.wait(30)
