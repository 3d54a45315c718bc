"""Where the database is and how to connect to it: URL resolution, engines and sessions.

The owner URL runs migrations and the CLI; the application URL (least-privilege role) is what
the API uses. Nothing connects at import time: callers build engines from settings.

SQLAlchemy is imported only when an engine, a session or a SQLAlchemy ``URL`` object is asked
for. An API worker needs nothing but libpq connection strings for its psycopg pool, and
importing SQLAlchemy cost each worker about half a second of start-up (on the path to the
first ``/ready``); ``attrition serve`` resolves and checks an already prepared database with
psycopg alone for the same reason.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from attrition.config import Settings
from attrition.db.embedded import EmbeddedServer
from attrition.db.embedded import start as start_embedded
from attrition.errors import ConfigurationError

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL

# Schemes SQLAlchemy would route to another driver, normalised to psycopg 3 (as before).
_PSYCOPG_ALIASES = frozenset({"postgresql", "postgres", "postgresql+psycopg2"})

# A URL whose meaning libpq and SQLAlchemy read identically: user information made only of
# RFC 3986 characters (anything else percent-encoded), no ``@`` or ``#`` past the host part.
# Only such URLs are handled as plain strings; any other one goes through SQLAlchemy's parser,
# exactly as before (a raw ``/``, space or ``%`` in a password is read differently by libpq).
_SIMPLE_URL = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+]*)://"
    r"(?:(?P<userinfo>(?:[A-Za-z0-9._~!$&'()*+,;=:-]|%[0-9A-Fa-f]{2})*)@)?"
    r"(?P<hosts>[^/?#@\s]*)"
    r"(?P<tail>(?:/[^?#@\s]*)?(?:\?[^#@\s]*)?)$"
)


def _simple(url: str) -> re.Match[str] | None:
    return _SIMPLE_URL.match(url)


def sqlalchemy_url(url: str) -> URL:
    """Normalise any PostgreSQL URL to the psycopg 3 driver."""
    from sqlalchemy import make_url

    u = make_url(url)
    if u.drivername in _PSYCOPG_ALIASES:
        u = u.set(drivername="postgresql+psycopg")
    return u


def normalized_dsn(url: str) -> str:
    """The URL as a string for the psycopg 3 driver, without importing SQLAlchemy if possible."""
    m = _simple(url)
    if m is None:
        return sqlalchemy_url(url).render_as_string(hide_password=False)
    scheme = m["scheme"]
    if scheme in _PSYCOPG_ALIASES:
        return "postgresql+psycopg" + url[len(scheme) :]
    return url


def libpq_conninfo(url: str | URL) -> str:
    """The same URL as a libpq conninfo string, for psycopg's own pools."""
    if isinstance(url, str):
        m = _simple(url)
        if m is not None:
            return "postgresql" + url[len(m["scheme"]) :]
        url = sqlalchemy_url(url)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def with_login(url: str, username: str, password: str | None) -> str:
    """``url`` with another user; the password too, unless None (as SQLAlchemy's ``URL.set``)."""
    m = _simple(url)
    if m is None:
        u = sqlalchemy_url(url).set(username=username, password=password)
        return u.render_as_string(hide_password=False)
    login = quote(username, safe="")
    if password is not None:
        login += ":" + quote(password, safe="")
    else:
        _, colon, kept = (m["userinfo"] or "").partition(":")
        login += colon + kept  # already percent-encoded
    return f"{m['scheme']}://{login}@{m['hosts']}{m['tail']}"


def _as_text(url: URL | str) -> str:
    return url if isinstance(url, str) else url.render_as_string(hide_password=False)


class Database:
    """The resolved database: owner URL, application URL, and the embedded server if any.

    URLs are kept as strings (SQLAlchemy syntax, psycopg 3 driver) and turned into SQLAlchemy
    ``URL`` objects only when a caller reads ``owner_url``/``app_url``/``admin_url``, so that
    the API workers and the start-up checks of ``attrition serve`` never import SQLAlchemy.
    """

    __slots__ = (
        "_admin",
        "_app",
        "_engines",
        "_owner",
        "app_password",
        "embedded",
        "embedded_dir",
        "persistent",
    )

    def __init__(
        self,
        owner_url: URL | str | None,
        app_url: URL | str,
        embedded: EmbeddedServer | None = None,
        admin_url: URL | str | None = None,
        persistent: bool = True,
        embedded_dir: str | None = None,
        app_password: str | None = None,
    ) -> None:
        # None in an API worker: it holds the application role's credentials only.
        self._owner = owner_url
        self.app_password = app_password
        self._app = app_url
        # Superuser URL used only to create roles (embedded server); else the owner URL.
        self._admin = admin_url
        self.embedded = embedded
        self.persistent = persistent
        self.embedded_dir = embedded_dir
        self._engines: dict[str, Engine] = {}

    # ---- URLs: strings first, SQLAlchemy objects on demand -------------------------------

    def _require_owner(self) -> URL | str:
        if self._owner is None:
            raise ConfigurationError(
                "Ce processus n'a que les droits du rôle applicatif (pas l'URL du propriétaire)."
            )
        return self._owner

    @property
    def owner_dsn(self) -> str:
        """Owner URL as a string (password included)."""
        return _as_text(self._require_owner())

    @property
    def app_dsn(self) -> str:
        """Application-role URL as a string (password included), for the API workers."""
        return _as_text(self._app)

    @property
    def owner_url(self) -> URL:
        owner = self._require_owner()
        if isinstance(owner, str):
            owner = self._owner = sqlalchemy_url(owner)
        return owner

    @property
    def app_url(self) -> URL:
        if isinstance(self._app, str):
            self._app = sqlalchemy_url(self._app)
        return self._app

    @property
    def admin_url(self) -> URL | None:
        if isinstance(self._admin, str):
            self._admin = sqlalchemy_url(self._admin)
        return self._admin

    @property
    def owner_conninfo(self) -> str:
        return libpq_conninfo(self._require_owner())

    @property
    def app_conninfo(self) -> str:
        """libpq connection string of the least-privilege application role (the API pool)."""
        return libpq_conninfo(self._app)

    @property
    def admin_conninfo(self) -> str:
        """libpq connection string for role management: the superuser, else the owner."""
        return libpq_conninfo(self._admin if self._admin is not None else self._require_owner())

    @property
    def database_name(self) -> str | None:
        return self._conninfo_parts().get("dbname")

    def _conninfo_parts(self) -> dict[str, Any]:
        from psycopg.conninfo import conninfo_to_dict

        url = self._owner if self._owner is not None else self._app
        return conninfo_to_dict(libpq_conninfo(url))

    @property
    def description(self) -> str:
        if self.embedded is not None or self.embedded_dir:
            where = self.embedded.pgdata if self.embedded is not None else self.embedded_dir
            return f"PostgreSQL embarqué ({where})"
        parts = self._conninfo_parts()
        host = parts.get("host") or "socket local"
        return f"PostgreSQL externe ({host}/{parts.get('dbname')})"

    # ---- connections ---------------------------------------------------------------------

    def connect(self, *, admin: bool = False, autocommit: bool = False) -> psycopg.Connection[Any]:
        """A plain psycopg connection as the owner (or the role manager): no SQLAlchemy."""
        import psycopg

        conninfo = self.admin_conninfo if admin else self.owner_conninfo
        return psycopg.connect(conninfo, autocommit=autocommit)

    def owner_engine(self) -> Engine:
        if "owner" not in self._engines:
            from sqlalchemy import create_engine

            self._engines["owner"] = create_engine(self.owner_url, pool_pre_ping=True)
        return self._engines["owner"]

    def admin_engine(self) -> Engine:
        """Engine for role management: the embedded superuser, or the owner on a server."""
        admin_url = self.admin_url
        if admin_url is None:
            return self.owner_engine()
        if "admin" not in self._engines:
            from sqlalchemy import create_engine

            self._engines["admin"] = create_engine(admin_url, pool_pre_ping=True)
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
    """Use DATABASE_URL when set; otherwise start the embedded server and create the database.

    A worker of ``attrition serve`` gets only ``ATTRITION_APP_DATABASE_URL``: it connects as
    the application role and never learns the owner's credentials.
    """
    app_password = settings.db.app_password.get_secret_value() if settings.db.app_password else None
    embedded_dir = os.environ.get("ATTRITION_EMBEDDED_PGDATA")
    if settings.database_url is None and settings.app_database_url:
        return Database(
            owner_url=None,
            app_url=normalized_dsn(settings.app_database_url),
            embedded_dir=embedded_dir,
            persistent=pgdata_persists(settings.resolved_pgdata) if embedded_dir else True,
        )
    if settings.database_url:
        owner = normalized_dsn(settings.database_url)
        app = with_login(owner, settings.db.app_role, app_password)
        # `attrition serve` hands its embedded server to worker processes through DATABASE_URL.
        return Database(
            owner_url=owner,
            app_url=app,
            embedded_dir=embedded_dir,
            persistent=pgdata_persists(settings.resolved_pgdata) if embedded_dir else True,
            app_password=app_password,
        )
    from attrition.db.embedded import role_password

    pgdata = settings.resolved_pgdata
    server = start_embedded(pgdata)
    owner_role = _ensure_database(
        server.url(),
        settings.db.name,
        settings.db.owner_role,
        owner_password=role_password(pgdata, settings.db.owner_role),
    )
    if app_password is None:
        app_password = role_password(pgdata, settings.db.app_role)
    return Database(
        owner_url=server.url(settings.db.name, user=owner_role),
        app_url=with_login(server.url(settings.db.name), settings.db.app_role, app_password),
        embedded=server,
        admin_url=server.url(settings.db.name),
        persistent=pgdata_persists(pgdata),
        app_password=app_password,
    )


def pgdata_persists(pgdata: Path | None, volume: Path = Path("/data")) -> bool:
    """Whether the embedded server's data directory survives a restart of its container.

    An explicitly configured directory persists, except one under ``/data`` (the persistent
    storage of a Hugging Face Space) when nothing is mounted there.
    """
    if pgdata is None:
        return False
    return not (pgdata.is_relative_to(volume) and not os.path.ismount(volume))


def _ensure_database(
    maintenance_url: str,
    name: str,
    owner_role: str | None = None,
    *,
    owner_password: str | None = None,
) -> str:
    """Create the database (owned by ``owner_role``, created if needed); return its owner.

    Plain psycopg in autocommit (CREATE DATABASE cannot run in a transaction): this runs at
    every start of the embedded server and must not pay for importing SQLAlchemy.
    """
    import psycopg
    from psycopg import sql

    with psycopg.connect(libpq_conninfo(maintenance_url), autocommit=True) as conn:
        if owner_role is not None:
            role_exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (owner_role,)
            ).fetchone()
            if not role_exists:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
                        sql.Identifier(owner_role)
                    )
                )
            if owner_password is not None:
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(owner_role), sql.Literal(owner_password)
                    )
                )
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if row is not None:
            return str(row[0])
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner_role:
            statement += sql.SQL(" OWNER {}").format(sql.Identifier(owner_role))
        conn.execute(statement)
        return owner_role or "postgres"


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
    return [psql, db.owner_conninfo]
