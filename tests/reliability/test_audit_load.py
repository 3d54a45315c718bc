"""Exact sealing under ordinary load: every committed prediction sealed once, chain intact.

A real `attrition serve --workers 2` sealing as often as it can, 8 concurrent clients of
single predictions (a third of them with an Idempotency-Key, some of which replay a key they
already used) and one client sending 500-row batches every 0.6 s. Once the load stops, one
more sealing pass; then `attrition audit verify` must find every prediction sealed exactly
once and no break. On the previous design (seal by id above the last link, older than a lag)
rows whose commit came after a higher id's seal were skipped forever, and verify reported a
false "inséré hors chaîne".

ATTRITION_SOAK_AUDIT_SECONDS sets the load's duration (8 s in `make test`, 60 s in `make soak`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.cli import app as cli
from attrition.config import Settings, get_settings
from attrition.db.engine import Database
from tests.helpers import Keys, auth
from tests.reliability.figures import Figures
from tests.reliability.server import start_server

SECONDS = float(os.environ.get("ATTRITION_SOAK_AUDIT_SECONDS", "8"))
SINGLE_CLIENTS = 8
BATCH_ROWS = 500
BATCH_EVERY_S = 0.6


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database: Database) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", database.owner_url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


class Load:
    """What the clients were answered: every prediction id, and the failures."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def add(self, ids: list[int]) -> None:
        with self.lock:
            self.ids.extend(ids)

    def fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


def _singles(base: str, key: str, stop: threading.Event, load: Load, index: int) -> None:
    used: list[str] = []
    n = 0
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.is_set():
            n += 1
            headers = auth(key)
            if index % 3 == 0:
                # Every fourth keyed request replays a key already used (same body).
                if used and n % 4 == 0:
                    headers["Idempotency-Key"] = used[-1]
                else:
                    used.append(f"load-{uuid.uuid4()}")
                    headers["Idempotency-Key"] = used[-1]
            # A replay must send the same body: keyed requests all send the example.
            body = (
                EXAMPLE_EMPLOYEE
                if "Idempotency-Key" in headers
                else {**EXAMPLE_EMPLOYEE, "age": 25 + (n + index) % 30}
            )
            try:
                r = client.post("/v1/predictions", json=body, headers=headers)
            except httpx.HTTPError as exc:
                load.fail(f"single: {type(exc).__name__}")
                continue
            if r.status_code != 201:
                load.fail(f"single: {r.status_code} {r.text[:200]}")
                continue
            load.add([int(r.json()["prediction_id"])])


def _batches(base: str, key: str, stop: threading.Event, load: Load) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        while not stop.is_set():
            started = time.monotonic()
            body = {"employes": [EXAMPLE_EMPLOYEE] * BATCH_ROWS}
            try:
                r = client.post("/v1/predictions/batch", json=body, headers=auth(key))
            except httpx.HTTPError as exc:
                load.fail(f"batch: {type(exc).__name__}")
                continue
            if r.status_code != 201:
                load.fail(f"batch: {r.status_code} {r.text[:200]}")
            else:
                load.add([int(p["prediction_id"]) for p in r.json()["predictions"]])
            stop.wait(max(0.0, BATCH_EVERY_S - (time.monotonic() - started)))


def test_every_prediction_is_sealed_once_under_mixed_load(
    database: Database,
    settings: Settings,
    keys: Keys,
    model_version: str,
    cli_env: CliRunner,
    figures: Figures,
) -> None:
    server = start_server(
        database,
        settings,
        workers=2,
        # Seal as often as possible: sealing runs concurrently with every write.
        env={"ATTRITION_DB__SEAL_INTERVAL_S": "0.05"},
    )
    load = Load()
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_singles, args=(server.base_url, keys.predicteur, stop, load, i), daemon=True
        )
        for i in range(SINGLE_CLIENTS)
    ]
    threads.append(
        threading.Thread(
            target=_batches, args=(server.base_url, keys.autre_predicteur, stop, load), daemon=True
        )
    )
    with figures.fault(
        "Scellement exact sous charge mixte (2 processus)",
        f"{SINGLE_CLIENTS} clients unitaires (un sur trois avec Idempotency-Key, rejouées "
        f"en partie) et un client de lots de {BATCH_ROWS} lignes toutes les {BATCH_EVERY_S} s, "
        f"pendant {SECONDS:g} s, scellement toutes les 50 ms",
        "chaque prédiction scellée une fois ; `attrition audit verify` : chaîne intacte",
    ) as fault:
        try:
            for t in threads:
                t.start()
            time.sleep(SECONDS)
            stop.set()
            for t in threads:
                t.join(90)
        finally:
            stop.set()
            server.signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
            server.log.unlink(missing_ok=True)
        assert not load.failures, load.failures[:5]
        answered = set(load.ids)
        assert len(answered) > BATCH_ROWS, len(answered)

        sealed = cli_env.invoke(cli, ["audit", "seal"])
        assert sealed.exit_code == 0, sealed.output
        with database.owner_engine().connect() as c:
            counts = c.execute(
                text(
                    "SELECT p.id, count(a.prediction_id) FROM predictions p "
                    "LEFT JOIN audit_chain a ON a.prediction_id = p.id "
                    "WHERE p.id = ANY(:ids) GROUP BY p.id"
                ),
                {"ids": sorted(answered)},
            ).all()
        assert len(counts) == len(answered)
        unsealed = sorted(pid for pid, n in counts if n != 1)
        assert not unsealed, (
            f"{len(unsealed)} prediction(s) not sealed exactly once: {unsealed[:10]}"
        )

        verified = cli_env.invoke(cli, ["audit", "verify"])
        assert verified.exit_code == 0, verified.output
        assert "Chaîne intacte" in verified.output
        assert " 0 pas encore scellée" in verified.output
        fault["mesure"] = (
            f"{len(answered)} prédictions répondues, chacune scellée une fois ; chaîne intacte"
        )
