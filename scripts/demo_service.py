"""A throw-away instance of the service for the documentation scripts.

Used by ``scripts/api_examples.py`` and ``scripts/screenshots.py``: an embedded PostgreSQL in
a temporary directory, migrated, loaded with the TechNova extracts, the logistic recipe
trained and registered (same recipe and seed as ``attrition train``), and one API key per
role. Nothing touches ``var/pgdata`` or ``DATABASE_URL``.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from attrition.config import PROJECT_ROOT, Settings
from attrition.db.engine import Database, ensure_database_exists, resolve_database

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "technova"
Say = Callable[[str], None]


def say(message: str) -> None:
    print(f"› {message}", file=sys.stderr, flush=True)


def data_dir() -> Path | None:
    """The extracts folder: ATTRITION_DATA_DIR, the workplace copy, or the default (fetched)."""
    env = os.environ.get("ATTRITION_DATA_DIR")
    if env:
        return Path(env)
    if (SHARED_DATA / "extrait_sirh.csv").is_file():
        return SHARED_DATA
    return None


@dataclass(frozen=True, slots=True)
class Demo:
    settings: Settings
    database: Database
    model_version: str
    keys: dict[str, str]
    """One raw API key per role: admin, predicteur, auditeur."""
    workdir: Path


@contextmanager
def demo_service(*, repeats: int = 5) -> Iterator[Demo]:
    """Start a temporary database with data, a registered model and keys; clean up after.

    ``repeats`` is the number of cross-validation repetitions of the evaluation stored with
    the model (5, as ``attrition train``, so that ``GET /v1/model`` shows the model card's
    figures); only the logistic recipe is evaluated, the one ``attrition train`` selects.
    """
    from attrition.bootstrap import load_if_empty, prepare_database
    from attrition.model.pipeline import train_and_register
    from attrition.security.store import create_key

    # A short path keeps the Unix socket under the 107-character limit.
    workdir = Path(tempfile.mkdtemp(prefix="attr-demo-"))
    settings = Settings(
        app_env="dev",
        database_url=None,
        pgdata=workdir / "pgdata",
        data_dir=data_dir(),
        secret_key=SecretStr("demo-secret-key-0123456789abcdef0123456789"),
        db={"app_password": SecretStr("demo-app-password-1234"), "pool_min_size": 1},
    )
    database: Database | None = None
    try:
        ensure_database_exists(settings)
        database = resolve_database(settings)
        prepare_database(settings, say, database)
        load_if_empty(database, settings, say)
        say(f"Entraînement de la régression logistique ({repeats} répétition(s) de la CV)…")
        started = time.perf_counter()
        version = train_and_register(
            database,
            settings,
            activate=True,
            repeats=repeats,
            candidates=("regression_logistique",),
        )
        say(f"Modèle {version} enregistré en {time.perf_counter() - started:.0f} s.")
        keys = {
            role: create_key(database, settings, name=f"demo-{role}", role=role).key
            for role in ("admin", "predicteur", "auditeur")
        }
        yield Demo(settings, database, version, keys, workdir)
    finally:
        if database is not None:
            database.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(demo: Demo) -> Iterator[str]:
    """The application served by uvicorn on 127.0.0.1 (a free port), in a thread."""
    import uvicorn

    from attrition.api.app import create_app

    app = create_app(demo.settings, database=demo.database)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-demo", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the uvicorn demo server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
