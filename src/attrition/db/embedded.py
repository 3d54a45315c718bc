"""The embedded PostgreSQL server (from the ``pgserver`` wheel) used when DATABASE_URL is unset.

It is a real PostgreSQL 16, started from binaries shipped in a pip package, listening on a
Unix socket inside its data directory: no Docker, no system service, no port to choose. The
server is shared by every process that asks for the same directory and stops when the last
one exits (pgserver counts handles), which gives ``make run`` its clean shutdown on Ctrl-C.

``start_in_background`` lets ``attrition serve`` launch the server first thing: ``pg_ctl start``
mostly waits on PostgreSQL, and that wait then overlaps the command's own imports instead of
adding to the time until the API is ready.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from attrition.errors import ConfigurationError

log = logging.getLogger(__name__)


SUPERUSER = "postgres"
# How role passwords are hashed (SCRAM verifiers, never MD5); no secret in these statements.
SCRAM_SESSION = "SET password_encryption = 'scram-sha-256'"  # pragma: allowlist secret
SCRAM_SYSTEM = "ALTER SYSTEM SET password_encryption = 'scram-sha-256'"  # pragma: allowlist secret
HBA = (
    "# Written by attrition: every role logs in with a SCRAM-SHA-256 password, on the Unix\n"
    "# socket only (no TCP line: the server does not listen on any IP address either).\n"
    "local   all   all   scram-sha-256\n"
)


def secrets_dir(pgdata: Path) -> Path:
    """Where the embedded server's role passwords live: beside its data directory."""
    return pgdata.absolute().parent / "secrets"


def role_password(pgdata: Path, role: str) -> str:
    """The generated password of ``role`` (created on first use, 0600)."""
    from attrition.db.secretfile import read_or_create

    return read_or_create(secrets_dir(pgdata) / f"{role}.password")


@dataclass(slots=True)
class EmbeddedServer:
    """A running embedded server and how to reach it."""

    pgdata: Path
    socket_dir: str
    handle: Any

    def url(self, database: str = "postgres", user: str = SUPERUSER) -> str:
        """SQLAlchemy URL (psycopg driver) for ``database`` as ``user`` over the Unix socket."""
        from urllib.parse import quote

        password = quote(role_password(self.pgdata, user), safe="")
        return f"postgresql+psycopg://{user}:{password}@/{database}?host={self.socket_dir}"

    def stop(self) -> None:
        """Release this process's handle; the server stops when no process holds one."""
        self.handle.cleanup()


_starting: dict[Path, Future[EmbeddedServer]] = {}
_starting_lock = threading.Lock()


def start_in_background(pgdata: Path) -> None:
    """Begin ``start(pgdata)`` in a thread; the next ``start(pgdata)`` of this process joins it.

    pgserver is imported here, in the calling thread: silencing its import warning touches
    the process-wide warning filters, which must not happen while another thread imports.
    Errors are not lost: they are raised by that ``start`` call.
    """
    key = pgdata.absolute()
    with _starting_lock:
        if key in _starting:
            return
        future: Future[EmbeddedServer] = Future()
        _starting[key] = future
    pgserver = _import_pgserver()

    def run() -> None:
        try:
            future.set_result(_start(pgserver, pgdata))
        except BaseException as exc:  # handed over to the caller of start()
            future.set_exception(exc)

    threading.Thread(target=run, name="embedded-postgres-start", daemon=True).start()


def start(pgdata: Path) -> EmbeddedServer:
    """Start (or join) the embedded server whose data directory is ``pgdata``."""
    with _starting_lock:
        future = _starting.pop(pgdata.absolute(), None)
    if future is not None:
        return future.result()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _start(_import_pgserver(), pgdata)


def _import_pgserver() -> Any:
    """pgserver, imported without its platformdirs warning (XDG_RUNTIME_DIR unset)."""
    from attrition.logs import quiet_embedded_server

    quiet_embedded_server(
        os.environ.get("LOG_LEVEL") or os.environ.get("ATTRITION_LOG_LEVEL") or "INFO"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


def ensure_writable_dir(path: Path) -> None:
    """Create ``path`` if needed and check this user may write there; else a French error.

    A volume mounted on ``/data`` but owned by root (the container runs as uid 1000) used to
    end in a raw ``PermissionError`` traceback from deep inside pgserver.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        usable = os.access(path, os.W_OK | os.X_OK)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        usable = False
    else:
        reason = "accès en écriture refusé"
    if not usable:
        raise ConfigurationError(
            f"Le dossier de la base embarquée {path} est inutilisable ({reason}) pour "
            f"l'utilisateur {_whoami()} : donnez-lui ce dossier (par ex. "
            f"« chown -R 1000:1000 » sur le volume monté), ou changez ATTRITION_PGDATA."
        )


def _whoami() -> str:
    uid = os.getuid() if hasattr(os, "getuid") else None
    return "courant" if uid is None else f"uid {uid}"


def _start(pgserver: Any, pgdata: Path) -> EmbeddedServer:
    ensure_writable_dir(pgdata)
    handle = pgserver.get_server(pgdata, cleanup_mode="stop")
    uri = handle.get_uri()
    host = parse_qs(urlparse(uri).query).get("host", [""])[0]
    _harden(pgdata, host)
    log.info("PostgreSQL embarqué prêt dans %s (socket %s)", pgdata, host)
    return EmbeddedServer(pgdata=pgdata, socket_dir=host, handle=handle)


def _harden(pgdata: Path, socket_dir: str) -> None:
    """Give the superuser a password and require SCRAM passwords for every role (once)."""
    import fcntl

    hba = pgdata / "pg_hba.conf"
    if hba.read_text(encoding="utf-8") == HBA:
        return
    secrets_dir(pgdata).mkdir(mode=0o700, parents=True, exist_ok=True)
    with (secrets_dir(pgdata) / ".harden.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting the same cluster
        if hba.read_text(encoding="utf-8") == HBA:
            return
        import psycopg
        from psycopg import sql

        password = role_password(pgdata, SUPERUSER)
        # Still under the initdb's trust rule: the last time a login without password works.
        with psycopg.connect(
            host=socket_dir, dbname="postgres", user=SUPERUSER, autocommit=True
        ) as conn:
            conn.execute(SCRAM_SESSION)
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(SUPERUSER), sql.Literal(password)
                )
            )
            conn.execute(SCRAM_SYSTEM)
            hba.write_text(HBA, encoding="utf-8")
            hba.chmod(0o600)
            conn.execute("SELECT pg_reload_conf()")
        log.info("PostgreSQL embarqué : mot de passe SCRAM-SHA-256 exigé pour chaque rôle")
