"""The embedded PostgreSQL server (from the ``pgserver`` wheel) used when DATABASE_URL is unset.

It is a real PostgreSQL 16, started from binaries shipped in a pip package, listening on a
Unix socket inside its data directory: no Docker, no system service, no port to choose. The
server is shared by every process that asks for the same directory and stops when the last
one exits (pgserver counts handles), which gives ``make run`` its clean shutdown on Ctrl-C.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

log = logging.getLogger(__name__)


@dataclass(slots=True)
class EmbeddedServer:
    """A running embedded server and how to reach it."""

    pgdata: Path
    socket_dir: str
    handle: Any

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg driver) for ``database`` as ``user`` over the Unix socket."""
        return f"postgresql+psycopg://{user}@/{database}?host={self.socket_dir}"

    def stop(self) -> None:
        """Release this process's handle; the server stops when no process holds one."""
        self.handle.cleanup()


def start(pgdata: Path) -> EmbeddedServer:
    """Start (or join) the embedded server whose data directory is ``pgdata``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        pgdata.mkdir(parents=True, exist_ok=True)
        handle = pgserver.get_server(pgdata, cleanup_mode="stop")
    uri = handle.get_uri()
    host = parse_qs(urlparse(uri).query).get("host", [""])[0]
    log.info("embedded PostgreSQL ready in %s (socket %s)", pgdata, host)
    return EmbeddedServer(pgdata=pgdata, socket_dir=host, handle=handle)
