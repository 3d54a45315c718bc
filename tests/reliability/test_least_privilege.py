"""A compromised worker holds only the application role; the embedded server wants passwords.

* `attrition serve --workers 2` is started with the owner's DATABASE_URL (as in production);
  each worker's initial environment (/proc/<pid>/environ, what a compromised worker or a
  core dump would show) holds the application role's URL and no owner credential.
* The embedded PostgreSQL refuses a login without password for every role (pg_hba.conf:
  SCRAM-SHA-256 on the Unix socket only), stores SCRAM verifiers, listens on no IP address,
  and its generated passwords are files of mode 0600 outside the repository.
"""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import urlparse

import psutil
import psycopg
import pytest

from attrition.config import PROJECT_ROOT, Settings
from attrition.db.embedded import HBA, secrets_dir
from attrition.db.engine import Database
from tests.reliability.server import start_server


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def test_workers_never_see_the_owner_credentials(
    database: Database, settings: Settings, model_version: str
) -> None:
    owner_url = database.owner_dsn
    owner = urlparse(owner_url.replace("+psycopg", ""))
    server = start_server(database, settings, workers=2)
    try:
        children = psutil.Process(server.process.pid).children(recursive=True)
        workers = [p for p in children if "multiprocessing" in " ".join(p.cmdline())]
        assert len(workers) >= 2, [p.cmdline() for p in children]
        for worker in workers:
            env = _environ(worker.pid)
            assert "DATABASE_URL" not in env and "ATTRITION_DATABASE_URL" not in env
            for value in env.values():
                assert owner_url not in value
                if owner.password:
                    assert owner.password not in value
            app = urlparse(env["ATTRITION_APP_DATABASE_URL"].replace("+psycopg", ""))
            assert app.username == settings.db.app_role
    finally:
        server.kill()
        server.log.unlink(missing_ok=True)


@pytest.fixture
def embedded(database: Database) -> Database:
    if database.embedded is None:
        pytest.skip("an external PostgreSQL (TEST_DATABASE_URL): its pg_hba.conf is not ours")
    return database


def test_the_embedded_server_requires_scram_passwords(
    embedded: Database, settings: Settings
) -> None:
    server = embedded.embedded
    assert server is not None
    for role in ("postgres", settings.db.owner_role, settings.db.app_role):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(host=server.socket_dir, dbname=settings.db.name, user=role).close()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(
                host=server.socket_dir,
                dbname=settings.db.name,
                user=role,
                password="wrong",  # pragma: allowlist secret
            ).close()
    assert (server.pgdata / "pg_hba.conf").read_text(encoding="utf-8") == HBA
    with embedded.connect(admin=True) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        rules = conn.execute("SELECT DISTINCT type, auth_method FROM pg_hba_file_rules").fetchall()
        assert rules == [("local", "scram-sha-256")]
        verifiers = conn.execute(
            "SELECT rolname, rolpassword LIKE 'SCRAM-SHA-256$%%' FROM pg_authid "
            "WHERE rolcanlogin ORDER BY rolname"
        ).fetchall()
    assert {name for name, _ in verifiers} >= {
        "postgres",
        settings.db.owner_role,
        settings.db.app_role,
    }
    assert all(scram for _, scram in verifiers), verifiers
    folder = secrets_dir(server.pgdata)
    assert not folder.is_relative_to(PROJECT_ROOT) or folder.is_relative_to(PROJECT_ROOT / "var")
    files = list(folder.glob("*.password"))
    assert {f.stem for f in files} >= {"postgres", settings.db.owner_role}
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
