"""The start-up path stays light: URLs handled without SQLAlchemy, PostgreSQL started early.

An API worker and the checks of ``attrition serve`` must not import SQLAlchemy or Alembic
(about a second of start-up together); the string handling of database URLs that replaces
SQLAlchemy there must mean exactly what SQLAlchemy's parser meant.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import make_url
from sqlalchemy.engine import URL

from attrition.db import embedded
from attrition.db.embedded import EmbeddedServer
from attrition.db.engine import (
    Database,
    libpq_conninfo,
    normalized_dsn,
    sqlalchemy_url,
    with_login,
)

SIMPLE_URLS = [
    "postgresql+psycopg://attrition_owner@/attrition?host=/tmp/attr-pg-x/pgdata",
    "postgresql://user:secret@db.example.org:5433/attrition?sslmode=require",  # pragma: allowlist secret
    "postgres://user:s%40cr%2Fet%20x@db.example.org/attrition",  # pragma: allowlist secret
    "postgresql+psycopg2://user@[::1]:5432/attrition",
    "postgresql://user:p4ss!$&'()*+,;=word@localhost/attrition?connect_timeout=3",
    "postgresql:///attrition?host=/var/run/postgresql&user=alice",
    "postgresql://user@localhost",
]
# Not plain RFC 3986: a raw "/", space or "%" in the password. SQLAlchemy and libpq read them
# differently, so these keep going through SQLAlchemy exactly as before.
ODD_URLS = [
    "postgresql://user:pa/ss@localhost/attrition",
    "postgresql://user:pa ss@localhost/attrition",
    "postgresql://user:50%off@localhost/attrition",  # pragma: allowlist secret
]


def _meaning(u: URL) -> dict[str, str]:
    """What SQLAlchemy understood, as the libpq keywords it stands for."""
    fields: dict[str, Any] = {
        "user": u.username,
        "password": u.password,
        "host": u.host,
        "port": str(u.port) if u.port else None,
        "dbname": u.database,
        **u.query,
    }
    return {k: v for k, v in fields.items() if v}


@pytest.mark.parametrize("url", SIMPLE_URLS)
def test_libpq_conninfo_means_what_sqlalchemy_parsed(url: str) -> None:
    assert conninfo_to_dict(libpq_conninfo(url)) == _meaning(sqlalchemy_url(url))


@pytest.mark.parametrize("url", SIMPLE_URLS + ODD_URLS)
def test_url_objects_and_odd_urls_render_as_before(url: str) -> None:
    before = sqlalchemy_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    assert libpq_conninfo(make_url(url)) == before
    if url in ODD_URLS:
        assert libpq_conninfo(url) == before


@pytest.mark.parametrize("url", SIMPLE_URLS + ODD_URLS)
@pytest.mark.parametrize("password", [None, "app-pass", "we:ird@/ pa%ss'"])
def test_with_login_matches_sqlalchemy_set(url: str, password: str | None) -> None:
    ours = with_login(normalized_dsn(url), "attrition_app", password)
    theirs = sqlalchemy_url(url).set(username="attrition_app", password=password)
    assert make_url(ours) == theirs
    if url in SIMPLE_URLS:
        assert conninfo_to_dict(libpq_conninfo(ours)) == _meaning(theirs)


@pytest.mark.parametrize("url", SIMPLE_URLS + ODD_URLS)
def test_normalized_dsn_uses_psycopg3(url: str) -> None:
    dsn = normalized_dsn(url)
    assert dsn.startswith("postgresql+psycopg://")
    assert make_url(dsn) == sqlalchemy_url(url)


def test_database_from_strings_reads_like_before() -> None:
    owner = "postgresql+psycopg://attrition_owner@/attrition?host=/tmp/sock"
    db = Database(
        owner_url=owner,
        app_url=with_login(owner, "attrition_app", None),
        admin_url="postgresql+psycopg://postgres@/attrition?host=/tmp/sock",
    )
    assert db.owner_dsn == owner
    assert db.owner_url == make_url(owner)
    assert db.app_url.username == "attrition_app"
    assert db.database_name == "attrition"
    assert conninfo_to_dict(db.app_conninfo) == {
        "user": "attrition_app",
        "dbname": "attrition",
        "host": "/tmp/sock",
    }
    assert conninfo_to_dict(db.admin_conninfo)["user"] == "postgres"
    assert db.description == "PostgreSQL externe (/tmp/sock/attrition)"
    external = Database(
        owner_url=make_url("postgresql+psycopg://u:p@db.example.org/prod"), app_url=owner
    )
    assert external.description == "PostgreSQL externe (db.example.org/prod)"
    assert external.owner_dsn == "postgresql+psycopg://u:p@db.example.org/prod"
    assert conninfo_to_dict(external.admin_conninfo)["user"] == "u"  # no admin: the owner


def test_worker_and_bootstrap_imports_stay_light() -> None:
    """What a uvicorn worker and the checks of `attrition serve` import: no SQLAlchemy, no Alembic."""
    code = (
        "import sys\n"
        "import attrition.api.app, attrition.bootstrap, attrition.cli\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_background_start_is_joined_by_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    threads: list[str] = []

    def fake_start(pgserver: Any, pgdata: Path) -> EmbeddedServer:
        threads.append(threading.current_thread().name)
        return EmbeddedServer(pgdata=pgdata, socket_dir=str(pgdata), handle=None)

    monkeypatch.setattr(embedded, "_start", fake_start)
    embedded.start_in_background(tmp_path)
    embedded.start_in_background(tmp_path)  # a second request does not start a second server
    server = embedded.start(tmp_path)
    assert server.pgdata == tmp_path
    assert threads == ["embedded-postgres-start"]
    # Joined once: the next start() starts (here: fakes) again, in the caller's thread.
    embedded.start(tmp_path)
    assert threads == ["embedded-postgres-start", threading.current_thread().name]


def test_background_start_failure_reaches_the_caller(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def failing_start(pgserver: Any, pgdata: Path) -> EmbeddedServer:
        raise RuntimeError("pg_ctl failed")

    monkeypatch.setattr(embedded, "_start", failing_start)
    embedded.start_in_background(tmp_path)
    with pytest.raises(RuntimeError, match="pg_ctl failed"):
        embedded.start(tmp_path)
