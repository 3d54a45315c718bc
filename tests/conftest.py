"""Shared fixtures: one real PostgreSQL per test session, migrated and loaded once.

The embedded server starts in a temporary directory (or TEST_DATABASE_URL / DATABASE_URL is
used when set, as in the GitHub workflow's postgres service). Database tests run inside a
transaction rolled back at the end; API tests isolate themselves with their own API keys.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Connection
from typer.testing import CliRunner

from attrition.api.app import create_app
from attrition.config import PROJECT_ROOT, Settings, get_settings
from attrition.db.engine import (
    Database,
    _ensure_database,
    ensure_database_exists,
    libpq_conninfo,
    resolve_database,
)
from attrition.model.final import fit_final
from attrition.model.pipeline import frame_fingerprint, read_training_frame, register_trained
from attrition.security.store import create_key
from tests.helpers import TEST_AUDIT_KEY, Keys

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "technova"


def data_dir() -> Path:
    env = os.environ.get("ATTRITION_DATA_DIR")
    if env:
        return Path(env)
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    return PROJECT_ROOT / "data" / "raw"


@pytest.fixture(scope="session")
def technova_dir() -> Path:
    path = data_dir()
    if not (path / "extrait_sirh.csv").is_file():
        pytest.fail(f"TechNova extracts not found in {path}: set ATTRITION_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, technova_dir: Path) -> Iterator[Settings]:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    # A short path keeps the Unix socket under the 107-character limit. Both folders are
    # removed at the end of the session (after ``database`` has stopped the server): each
    # run would otherwise leave ~330 MB of cluster behind in /tmp.
    pgdata = Path(tempfile.mkdtemp(prefix="attr-pg-")) / "pgdata"
    # The CLI (get_settings) and the servers started by tests read these from the
    # environment: the same key and checkpoint folder as the in-process app, never var/.
    checkpoints = Path(tempfile.mkdtemp(prefix="attr-audit-"))
    os.environ["ATTRITION_AUDIT_KEY"] = TEST_AUDIT_KEY
    os.environ["ATTRITION_AUDIT_CHECKPOINT_DIR"] = str(checkpoints)
    yield Settings(
        app_env="test",
        database_url=url,
        pgdata=None if url else pgdata,
        data_dir=technova_dir,
        secret_key=SecretStr("test-secret-key-0123456789abcdef0123456789"),
        audit_key=SecretStr(TEST_AUDIT_KEY),
        audit_checkpoint_dir=checkpoints,
        db={"app_password": SecretStr("test-app-password-1234"), "pool_min_size": 1},
        api={
            "rate_limit_per_minute": 100_000,
            "auth_failures_per_minute": 100_000,
            "sign_in_failures_per_minute": 100_000,
            "predictions_per_minute": 10_000_000,
            "predictions_per_day": 1_000_000_000,
            "rejections_recorded_per_minute": 100_000,
            "rejections_recorded_per_minute_total": 100_000,
        },
    )
    shutil.rmtree(pgdata.parent, ignore_errors=True)
    shutil.rmtree(checkpoints, ignore_errors=True)


@pytest.fixture(scope="session")
def database(settings: Settings) -> Iterator[Database]:
    from attrition.bootstrap import load_if_empty, prepare_database

    ensure_database_exists(settings)
    db = resolve_database(settings)
    prepare_database(settings, lambda _m: None, db)
    load_if_empty(db, settings, lambda _m: None)
    yield db
    db.stop()


@pytest.fixture
def conn(database: Database) -> Iterator[Connection]:
    """An owner connection inside a transaction that is rolled back after the test."""
    engine = database.owner_engine()
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


@pytest.fixture(scope="session")
def model_version(database: Database, settings: Settings) -> str:
    """The logistic recipe fitted on the whole dataset, registered and activated once."""
    frame = read_training_frame(database)
    trained = fit_final(frame, "regression_logistique", settings.seed)
    return register_trained(database, trained, frame_fingerprint(frame), activate=True)


@pytest.fixture(scope="session")
def keys(database: Database, settings: Settings) -> Keys:
    def make(name: str, role: str) -> str:
        return create_key(database, settings, name=name, role=role).key

    return Keys(
        admin=make("test-admin", "admin"),
        predicteur=make("test-predicteur", "predicteur"),
        autre_predicteur=make("test-predicteur-2", "predicteur"),
        auditeur=make("test-auditeur", "auditeur"),
    )


@pytest.fixture(scope="session")
def client(database: Database, settings: Settings, model_version: str) -> Iterator[TestClient]:
    """The app in process, with the registered model (one instance for the whole session)."""
    app = create_app(settings, database=database)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, database: Database, settings: Settings
) -> Iterator[CliRunner]:
    """A runner for the ``attrition`` command, pointed at the test database as its owner."""
    monkeypatch.setenv("DATABASE_URL", database.owner_url.render_as_string(hide_password=False))
    monkeypatch.setenv("ATTRITION_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("ATTRITION_DATA_DIR", str(settings.data_dir))
    assert settings.db.app_password is not None
    monkeypatch.setenv("ATTRITION_DB__APP_PASSWORD", settings.db.app_password.get_secret_value())
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def scratch(database: Database) -> Iterator[Database]:
    """An empty database on the same server, with the same roles; dropped afterwards."""
    name = f"attrition_scratch_{uuid.uuid4().hex[:8]}"
    admin = database.admin_url or database.owner_url
    embedded = database.admin_url is not None
    maintenance = admin.set(database="postgres").render_as_string(hide_password=False)
    _ensure_database(maintenance, name, database.owner_url.username if embedded else None)
    db = Database(
        owner_url=database.owner_url.set(database=name),
        app_url=database.app_url.set(database=name),
        admin_url=admin.set(database=name) if embedded else None,
    )
    try:
        yield db
    finally:
        db.dispose()
        with psycopg.connect(libpq_conninfo(maintenance), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
