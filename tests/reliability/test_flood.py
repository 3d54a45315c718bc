"""One client floods bad keys and oversized headers; eight valid clients keep being served.

A real server (`attrition serve`, one process) on 127.0.0.1 with the default limits on failed
authentications and on refusals written to the database. Eight clients with a valid key send
predictions for ``ATTRITION_FLOOD_SECONDS`` seconds (60 in `make soak`, 3 in `make test`),
once alone and once while another process, from the same address, sends as fast as it can
requests with a wrong key and requests whose headers pass the 16 KB bound. Every request of
the valid clients must get a 2xx in both runs (no lockout), and in the full run their p99
latency under the flood must stay within twice the one without it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import time
from collections import Counter
from multiprocessing.synchronize import Event

import httpx

from attrition.config import Settings
from attrition.db.engine import Database
from attrition.security.keys import generate_key
from tests.helpers import Keys
from tests.reliability import load
from tests.reliability.figures import Figures
from tests.reliability.server import start_server

SECONDS = float(os.environ.get("ATTRITION_FLOOD_SECONDS", "3"))
CLIENTS = 8
#: Below this duration the latencies are too few to compare: only the statuses are checked.
FULL_RUN_S = 30.0


def _flood(port: int, stop: Event, counts: dict[str, int]) -> None:
    """Bad keys and oversized heads on fresh connections, as fast as the server answers."""
    wrong = generate_key().full
    bad_key = f"GET /v1/model HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {wrong}\r\n"
    big_head = "GET /v1/model HTTP/1.1\r\nHost: t\r\nX-Rembourrage: " + "a" * 20_000 + "\r\n"
    n = 0
    while not stop.is_set():
        request = (big_head if n % 2 else bad_key) + "Connection: close\r\n\r\n"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(request.encode())
                status = sock.recv(64)[9:12].decode() or "fermée"
        except OSError:
            status = "erreur"
        counts[status] = counts.get(status, 0) + 1
        n += 1


async def _valid_clients(base_url: str, key: str, seconds: float) -> list[tuple[int, float]]:
    """(status, seconds) of every request of the valid clients during ``seconds``."""
    results: list[tuple[int, float]] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    async def one(client: httpx.AsyncClient, index: int) -> None:
        n = index
        while time.monotonic() < deadline:
            started = time.perf_counter()
            r = await client.post(
                "/v1/predictions",
                json=load.employee(n),
                headers={"Authorization": f"Bearer {key}"},
            )
            results.append((r.status_code, time.perf_counter() - started))
            n += CLIENTS

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:
        await asyncio.gather(*(one(client, i) for i in range(CLIENTS)))
    return results


def test_a_flood_of_bad_keys_and_big_headers_locks_nobody_out(
    database: Database,
    settings: Settings,
    model_version: str,
    keys: Keys,
    figures: Figures,
) -> None:
    server = start_server(
        database,
        settings,
        env={
            "ATTRITION_API__AUTH_FAILURES_PER_MINUTE": None,  # the defaults (20, 10, 120)
            "ATTRITION_API__REJECTIONS_RECORDED_PER_MINUTE": None,
            "ATTRITION_API__REJECTIONS_RECORDED_PER_MINUTE_TOTAL": None,
        },
    )
    try:
        calm = asyncio.run(_valid_clients(server.base_url, keys.predicteur, SECONDS))
        context = multiprocessing.get_context("fork")
        stop = context.Event()
        manager = context.Manager()
        counts = manager.dict()
        flooder = context.Process(target=_flood, args=(server.port, stop, counts))
        flooder.start()
        try:
            time.sleep(0.5)  # the flood is on before the measure starts
            flooded = asyncio.run(_valid_clients(server.base_url, keys.predicteur, SECONDS))
        finally:
            stop.set()
            flooder.join(15)
            if flooder.is_alive():
                flooder.kill()
        flood = dict(counts)
        manager.shutdown()
    finally:
        server.signal(signal.SIGTERM)
        server.wait(30)

    p99_calm = load.percentile([s for _, s in calm], 0.99) * 1000
    p99_flood = load.percentile([s for _, s in flooded], 0.99) * 1000
    statuses = Counter(status for status, _ in calm + flooded)
    figures.section(
        "inondation",
        secondes=SECONDS,
        clients_valides=CLIENTS,
        requetes_valides_sans=len(calm),
        requetes_valides_pendant=len(flooded),
        reponses_valides_non_2xx=sum(n for s, n in statuses.items() if not 200 <= s < 300),
        p99_sans_ms=round(p99_calm, 1),
        p99_pendant_ms=round(p99_flood, 1),
        requetes_inondation=sum(flood.values()),
        inondation_401=flood.get("401", 0),
        inondation_429=flood.get("429", 0),
        inondation_431=flood.get("431", 0),
    )
    assert calm and flooded
    assert set(statuses) == {201}, statuses
    assert flood.get("431", 0) > 0 and flood.get("429", 0) > 0, flood
    assert set(flood) <= {"401", "429", "431"}, flood
    if SECONDS >= FULL_RUN_S:
        assert p99_flood <= 2 * p99_calm, (p99_calm, p99_flood)
