"""The database down, locked or out of connections: fast 503s, nothing half-written, recovery.

The outage test stops and restarts a PostgreSQL of its own (embedded, in a short temporary
directory, migrated, loaded, with a registered model), so that the other tests keep theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import PoolTimeout
from sqlalchemy import text

from attrition.api.app import create_app
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.bootstrap import load_if_empty, prepare_database
from attrition.config import Settings
from attrition.db.engine import Database, resolve_database
from attrition.model.final import fit_final
from attrition.model.pipeline import frame_fingerprint, read_training_frame, register_trained
from attrition.security.store import create_key
from tests.helpers import Keys, auth, orphan_inputs
from tests.reliability.figures import Figures, fr

#: The bound the issue sets on a 503 while the database is down.
DOWN_BOUND_S = 3.0


def _inputs(database: Database, request_ids: list[str]) -> int:
    with database.owner_engine().connect() as c:
        return int(
            c.scalar(
                text("SELECT count(*) FROM prediction_inputs WHERE client_request_id = ANY(:r)"),
                {"r": request_ids},
            )
            or 0
        )


def _predict(client: TestClient, key: str, request_id: str) -> tuple[Any, float]:
    started = time.perf_counter()
    r = client.post(
        "/v1/predictions",
        json=EXAMPLE_EMPLOYEE,
        headers={**auth(key), "X-Request-ID": request_id},
    )
    return r, time.perf_counter() - started


# ---- the database stops, then starts again --------------------------------------------------


@dataclass
class OwnServer:
    """An embedded PostgreSQL of this module, that the test may stop and start."""

    settings: Settings
    database: Database
    key: str

    def pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl  # the binaries the server runs on

        assert self.database.embedded is not None
        server = self.database.embedded
        pg_ctl([*args], pgdata=server.pgdata, user=server.handle.system_user, timeout=30)

    def stop(self) -> None:
        self.pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        # The options pgserver starts it with: no TCP, the same Unix socket directory.
        server = self.database.embedded
        assert server is not None
        self.pg_ctl(
            "-w", "-o", '-h ""', "-o", f"-k {server.socket_dir}", "-l", str(server.pgdata / "log"),
            "start",
        )  # fmt: skip


@pytest.fixture(scope="module")
def own_server(settings: Settings) -> Iterator[OwnServer]:
    pgdata = Path(tempfile.mkdtemp(prefix="attr-out-")) / "pgdata"
    own = settings.model_copy(
        update={
            "database_url": None,
            "pgdata": pgdata,
            # The production pool: two idle connections that the restart leaves dead.
            "db": settings.db.model_copy(update={"pool_min_size": 2}),
        }
    )
    database = resolve_database(own)
    try:
        prepare_database(own, lambda _m: None, database)
        load_if_empty(database, own, lambda _m: None)
        frame = read_training_frame(database)
        trained = fit_final(frame, "regression_logistique", own.seed)
        register_trained(database, trained, frame_fingerprint(frame), activate=True)
        key = create_key(database, own, name="panne", role="predicteur").key
        yield OwnServer(own, database, key)
    finally:
        # pgserver only stops the postmaster it started itself, not the one the test restarted.
        with contextlib.suppress(subprocess.CalledProcessError):
            OwnServer(own, database, "").stop()
        database.stop()
        shutil.rmtree(pgdata.parent, ignore_errors=True)


def test_database_stopped_then_restarted(own_server: OwnServer, figures: Figures) -> None:
    database, key = own_server.database, own_server.key
    app = create_app(own_server.settings, database=database)
    with TestClient(app, raise_server_exceptions=False) as client:
        r, _ = _predict(client, key, f"avant-{uuid.uuid4().hex}")
        assert r.status_code == 201, r.text
        with figures.fault(
            "Base de données arrêtée puis redémarrée (pg_ctl stop / start)",
            "arrêt du serveur PostgreSQL pendant que l'API tourne",
            f"503 avec Retry-After en moins de {fr(DOWN_BOUND_S, 's', 0)}, /health 200, /ready 503, "
            "rien d'écrit ; service rétabli sans redémarrer l'API",
        ) as fault:
            own_server.stop()
            during = [f"pendant-{i}-{uuid.uuid4().hex}" for i in range(3)]
            slowest = 0.0
            for request_id in during:
                r, elapsed = _predict(client, key, request_id)
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"].isdigit()
                assert r.headers["content-type"] == "application/problem+json"
                assert "indisponible" in r.json()["detail"]
                assert elapsed < DOWN_BOUND_S, elapsed
                slowest = max(slowest, elapsed)
            assert client.get("/health").status_code == 200
            started = time.perf_counter()
            ready = client.get("/ready")
            assert ready.status_code == 503 and ready.json()["statut"] == "indisponible"
            assert time.perf_counter() - started < DOWN_BOUND_S

            own_server.start()
            back = f"apres-{uuid.uuid4().hex}"
            r, _ = _predict(client, key, back)  # the very first request after the restart
            assert r.status_code == 201, r.text
            assert client.get("/ready").status_code == 200
            assert _inputs(database, during) == 0
            assert _inputs(database, [back]) == 1
            assert orphan_inputs(database) == 0
            fault["mesure"] = (
                f"3 requêtes pendant l'arrêt : 503 en {fr(slowest, 's')} au plus ; "
                "première requête après le redémarrage : 201"
            )

        with figures.fault(
            "Base de données redémarrée pendant que le pool est inactif",
            "redémarrage rapide de PostgreSQL sans requête entre l'arrêt et la reprise",
            "la première requête après la reprise réussit (connexions mortes écartées)",
        ) as fault:
            for _ in range(2):
                assert _predict(client, key, f"chaud-{uuid.uuid4().hex}")[0].status_code == 201
            own_server.stop()
            own_server.start()
            r, elapsed = _predict(client, key, f"reprise-{uuid.uuid4().hex}")
            assert r.status_code == 201, r.text
            fault["mesure"] = f"première requête après la reprise : 201 en {fr(elapsed, 's')}"


# ---- a table locked by another transaction -------------------------------------------------


@pytest.mark.parametrize("table", ["prediction_inputs", "predictions"])
def test_locked_table_gives_503_in_bounded_time(
    table: str,
    client: TestClient,
    keys: Keys,
    database: Database,
    settings: Settings,
    figures: Figures,
) -> None:
    # The bounds come from the application role, and both ways PostgreSQL cancels a statement
    # are "operational" errors, which the API turns into a 503.
    with database.owner_engine().connect() as c:
        config = c.scalar(
            text("SELECT rolconfig FROM pg_roles WHERE rolname = :r"), {"r": settings.db.app_role}
        )
    assert f"lock_timeout={settings.db.lock_timeout_ms}" in config
    assert f"statement_timeout={settings.db.statement_timeout_ms}" in config
    assert issubclass(psycopg.errors.LockNotAvailable, psycopg.OperationalError)
    assert issubclass(psycopg.errors.QueryCanceled, psycopg.OperationalError)
    bound = settings.db.lock_timeout_ms / 1000 + 1.5
    request_id = f"verrou-{uuid.uuid4().hex}"
    with figures.fault(
        f"Table {table} verrouillée (LOCK TABLE … ACCESS EXCLUSIVE)",
        "une transaction du propriétaire garde le verrou pendant la requête",
        f"503 avec Retry-After en moins de lock_timeout + 1,5 s ({fr(bound, 's', 1)}), "
        "transaction annulée, aucune entrée orpheline",
    ) as fault:
        engine = database.owner_engine()
        with engine.connect() as owner:
            lock = owner.begin()
            owner.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            try:
                r, elapsed = _predict(client, keys.predicteur, request_id)
                started = time.perf_counter()
                listing = client.get("/v1/predictions", headers=auth(keys.auditeur))
                read_elapsed = time.perf_counter() - started
            finally:
                lock.rollback()
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"].isdigit()
        assert elapsed < bound, elapsed
        assert listing.status_code == 503 and listing.headers["retry-after"].isdigit()
        assert read_elapsed < bound, read_elapsed
        assert _inputs(database, [request_id]) == 0
        assert orphan_inputs(database) == 0
        r, _ = _predict(client, keys.predicteur, f"deverrou-{uuid.uuid4().hex}")
        assert r.status_code == 201
        fault["mesure"] = (
            f"écriture : 503 en {fr(elapsed, 's')} ; lecture : 503 en {fr(read_elapsed, 's')}"
        )


# ---- every connection of the pool taken -----------------------------------------------------


def test_pool_exhaustion_fails_fast(
    database: Database, settings: Settings, model_version: str, keys: Keys, figures: Figures
) -> None:
    """Every connection taken: a request that needs one gets a 503 at once, and nothing is
    written; a plain prediction still goes through the connection the audit writer keeps."""
    small = settings.model_copy(
        update={
            "db": settings.db.model_copy(
                update={"pool_min_size": 1, "pool_max_size": 2, "pool_timeout_s": 0.5}
            )
        }
    )
    bound = small.db.pool_timeout_s + 1.0
    app = create_app(small, database=database)
    with TestClient(app, raise_server_exceptions=False) as client:
        r, _ = _predict(client, keys.predicteur, f"pool-{uuid.uuid4().hex}")
        assert r.status_code == 201  # the key is cached, the writer keeps its connection
        held, release = threading.Event(), threading.Event()
        taken: list[Any] = []

        async def hold_every_connection() -> None:
            pool = app.state.pool
            with contextlib.suppress(PoolTimeout):
                while True:  # every connection the pool can still lend
                    taken.append(await pool.getconn(timeout=0.3))
            held.set()
            try:
                while not release.is_set():
                    await asyncio.sleep(0.01)
            finally:
                for conn in taken:
                    await pool.putconn(conn)

        with figures.fault(
            "Pool de connexions épuisé (2 connexions sur 2 occupées)",
            "une connexion gardée par l'écriture groupée, l'autre tenue par une autre tâche",
            f"503 avec Retry-After en moins de pool_timeout + 1 s ({fr(bound, 's', 1)}) pour "
            "une requête qui lit la base ; une prédiction simple reste servie",
        ) as fault:
            holder = client.portal.start_task_soon(hold_every_connection)  # type: ignore[union-attr]
            try:
                assert held.wait(10)
                request_id = f"pool-{uuid.uuid4().hex}"
                started = time.perf_counter()
                r = client.post(  # a stored employee: checked in the database first
                    "/v1/predictions",
                    json={**EXAMPLE_EMPLOYEE, "id_employee": 1},
                    headers={**auth(keys.predicteur), "X-Request-ID": request_id},
                )
                elapsed = time.perf_counter() - started
                plain_id = f"pool-{uuid.uuid4().hex}"
                plain, _ = _predict(client, keys.predicteur, plain_id)
            finally:
                release.set()
                holder.result(10)
            assert len(taken) == 1  # the other one is the writer's
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"].isdigit()
            assert elapsed < bound, elapsed
            assert _inputs(database, [request_id]) == 0
            assert plain.status_code == 201, plain.text
            assert _inputs(database, [plain_id]) == 1
            r, _ = _predict(client, keys.predicteur, f"pool-{uuid.uuid4().hex}")
            assert r.status_code == 201
            fault["mesure"] = (
                f"503 en {fr(elapsed, 's')} (pool_timeout {fr(small.db.pool_timeout_s, 's', 1)}) ; "
                "prédiction simple : 201"
            )
