"""Where the database is and how to connect to it: URL resolution, engines and sessions.

The owner URL runs migrations and the CLI; the application URL (least-privilege role) is what
the API uses. Nothing connects at import time: callers build engines from settings.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from attrition.config import Settings
from attrition.db.embedded import EmbeddedServer
from attrition.db.embedded import start as start_embedded
from attrition.errors import ConfigurationError


def sqlalchemy_url(url: str) -> URL:
    """Normalise any PostgreSQL URL to the psycopg 3 driver."""
    u = make_url(url)
    if u.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        u = u.set(drivername="postgresql+psycopg")
    return u


def libpq_conninfo(url: str | URL) -> str:
    """The same URL as a libpq conninfo string, for psycopg's own pools."""
    u = sqlalchemy_url(str(url)) if isinstance(url, str) else url
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(slots=True)
class Database:
    """The resolved database: owner URL, application URL, and the embedded server if any."""

    owner_url: URL
    app_url: URL
    embedded: EmbeddedServer | None = None
    admin_url: URL | None = None
    """Superuser URL used only to create roles (embedded server); else the owner URL."""
    persistent: bool = True
    embedded_dir: str | None = None
    _engines: dict[str, Engine] = field(default_factory=dict)

    @property
    def description(self) -> str:
        if self.embedded is not None or self.embedded_dir:
            where = self.embedded.pgdata if self.embedded is not None else self.embedded_dir
            return f"PostgreSQL embarqué ({where})"
        host = self.owner_url.host or self.owner_url.query.get("host") or "socket local"
        return f"PostgreSQL externe ({host}/{self.owner_url.database})"

    def owner_engine(self) -> Engine:
        if "owner" not in self._engines:
            self._engines["owner"] = create_engine(self.owner_url, pool_pre_ping=True)
        return self._engines["owner"]

    def admin_engine(self) -> Engine:
        """Engine for role management: the embedded superuser, or the owner on a server."""
        if self.admin_url is None:
            return self.owner_engine()
        if "admin" not in self._engines:
            self._engines["admin"] = create_engine(self.admin_url, pool_pre_ping=True)
        return self._engines["admin"]

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    def stop(self) -> None:
        self.dispose()
        if self.embedded is not None:
            self.embedded.stop()


def resolve_database(settings: Settings) -> Database:
    """Use DATABASE_URL when set; otherwise start the embedded server and create the database."""
    if settings.database_url:
        owner = sqlalchemy_url(settings.database_url)
        password = settings.db.app_password.get_secret_value() if settings.db.app_password else None
        app = owner.set(username=settings.db.app_role, password=password)
        # `attrition serve` hands its embedded server to worker processes through DATABASE_URL.
        embedded_dir = os.environ.get("ATTRITION_EMBEDDED_PGDATA")
        return Database(
            owner_url=owner,
            app_url=app,
            embedded_dir=embedded_dir,
            persistent=pgdata_persists(settings.resolved_pgdata) if embedded_dir else True,
        )
    server = start_embedded(settings.resolved_pgdata)
    owner_role = _ensure_database(server.url(), settings.db.name, settings.db.owner_role)
    owner = make_url(server.url(settings.db.name, user=owner_role))
    app = make_url(server.url(settings.db.name, user=settings.db.app_role))
    return Database(
        owner_url=owner,
        app_url=app,
        embedded=server,
        admin_url=make_url(server.url(settings.db.name)),
        persistent=pgdata_persists(settings.resolved_pgdata),
    )


def pgdata_persists(pgdata: Path | None, volume: Path = Path("/data")) -> bool:
    """Whether the embedded server's data directory survives a restart of its container.

    An explicitly configured directory persists, except one under ``/data`` (the persistent
    storage of a Hugging Face Space) when nothing is mounted there.
    """
    if pgdata is None:
        return False
    return not (pgdata.is_relative_to(volume) and not os.path.ismount(volume))


def _ensure_database(maintenance_url: str, name: str, owner_role: str | None = None) -> str:
    """Create the database (owned by ``owner_role``, created if needed); return its owner."""
    engine = create_engine(maintenance_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if owner_role is not None:
                role_exists = conn.scalar(
                    text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": owner_role}
                )
                if not role_exists:
                    conn.execute(
                        text(
                            f'CREATE ROLE "{owner_role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
                        )
                    )
            current = conn.scalar(
                text("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :n"),
                {"n": name},
            )
            if current is None:
                suffix = f' OWNER "{owner_role}"' if owner_role else ""
                conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
                current = owner_role or "postgres"
            return str(current)
    finally:
        engine.dispose()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def owner_session(db: Database) -> Iterator[Session]:
    """A session as the owner, in one transaction committed on success."""
    factory = session_factory(db.owner_engine())
    with factory.begin() as session:
        yield session


def ensure_database_exists(settings: Settings) -> None:
    """On an external server, create the database named in DATABASE_URL if it is missing."""
    if not settings.database_url:
        return  # the embedded path creates it in resolve_database
    owner = sqlalchemy_url(settings.database_url)
    maintenance = owner.set(database="postgres")
    _ensure_database(maintenance.render_as_string(hide_password=False), owner.database or "", None)


def psql_command(db: Database) -> list[str]:
    """The argv of psql connected to ``db`` (the embedded server ships its own psql)."""
    psql = shutil.which("psql")
    if db.embedded is not None:
        import pgserver

        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql"
        if bundled.exists():
            psql = str(bundled)
    if psql is None:
        raise ConfigurationError("psql introuvable : installez le client PostgreSQL.")
    return [psql, libpq_conninfo(db.owner_url)]
