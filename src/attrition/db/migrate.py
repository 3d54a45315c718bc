"""Applying migrations and the least-privilege grants; generating the plain-SQL schema.

Alembic and SQLAlchemy are imported only when a migration really has to run (or the schema
is generated): ``attrition serve`` checks the recorded revision with one psycopg query, and
importing both libraries for a schema already at head cost the start-up more than half a
second.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrition.config import Settings
from attrition.errors import ConfigurationError

if TYPE_CHECKING:
    import psycopg
    from alembic.config import Config
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL

MIGRATIONS = Path(__file__).parent / "migrations"

HEAD_REVISION = "0016"
"""The last migration of ``migrations/versions``: bump it with every new migration.

A test compares it with Alembic's own view of the head, so it cannot silently fall behind
(a stale value would make ``schema_at_head`` report a migrated database as behind, or worse).
"""


def alembic_config(url: URL | None = None, *, stdout: io.StringIO | None = None) -> Config:
    from alembic.config import Config

    cfg = Config(stdout=stdout) if stdout is not None else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        cfg.set_main_option(
            "sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%")
        )
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the latest revision (idempotent)."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revision(engine: Engine) -> str | None:
    from sqlalchemy import text

    with engine.connect() as conn:
        exists = conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not exists:
            return None
        return conn.scalar(text("SELECT version_num FROM alembic_version"))


def schema_sql() -> str:
    """The whole schema as plain SQL DDL, generated from the migrations (offline mode)."""
    from alembic import command
    from sqlalchemy.engine import URL

    buffer = io.StringIO()
    cfg = alembic_config(URL.create("postgresql+psycopg"), stdout=buffer)
    cfg.output_buffer = buffer
    command.upgrade(cfg, "head", sql=True)
    header = (
        "-- Schema of the Futurisys attrition service, generated from the Alembic migrations\n"
        "-- by `attrition db schema-sql` (do not edit: a test fails when it drifts).\n\n"
    )
    return header + buffer.getvalue()


def recorded_revisions(conn: psycopg.Connection[Any]) -> list[str]:
    """The revisions in ``alembic_version`` (none when Alembic never ran on this database)."""
    exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return []
    return [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]


def schema_at_head(conn: psycopg.Connection[Any]) -> bool:
    """Whether the database records exactly ``HEAD_REVISION``: then there is nothing to apply.

    Anything else (no table, an older revision, an unknown one, several heads) is left to
    Alembic, which migrates or reports the problem as before.
    """
    return recorded_revisions(conn) == [HEAD_REVISION]


def ensure_app_role(
    conn: psycopg.Connection[Any],
    settings: Settings,
    database: str,
    password: str | None = None,
) -> None:
    """Create the application role and give it only what the API needs.

    SELECT on the dataset and the registry; SELECT and INSERT on the audit trail (no UPDATE,
    DELETE or TRUNCATE: the append-only triggers are a second lock); on the key table, what
    authentication and key management need; sealing only through ``audit_append``. Timeouts
    bound every statement it runs.

    Runs on a plain psycopg connection, in one transaction, at every start: re-granting is
    idempotent and takes a few milliseconds, and it keeps the role in line with the settings
    (password, timeouts) without a way to drift.
    """
    role = settings.db.app_role
    with conn.transaction():
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        row = conn.execute(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        can_manage = bool(row and row[0])
        if not can_manage:
            if not exists:
                raise ConfigurationError(
                    f"Le rôle applicatif « {role} » n'existe pas et l'utilisateur de "
                    "DATABASE_URL ne peut pas le créer (CREATEROLE requis)."
                )
        else:
            _configure_role(conn, settings, exists=bool(exists), password=password)
        for statement in _grants(role, database):
            conn.execute(statement)


def _configure_role(
    conn: psycopg.Connection[Any], settings: Settings, *, exists: bool, password: str | None
) -> None:
    role = settings.db.app_role
    if password is None and settings.db.app_password is not None:
        password = settings.db.app_password.get_secret_value()
    if not exists:
        conn.execute(
            f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT '
            "CONNECTION LIMIT 100"
        )
    if password is not None:
        conn.execute(f"ALTER ROLE \"{role}\" PASSWORD '{_quote(password)}'")
    conn.execute(f'ALTER ROLE "{role}" SET statement_timeout = {settings.db.statement_timeout_ms}')
    conn.execute(f'ALTER ROLE "{role}" SET lock_timeout = {settings.db.lock_timeout_ms}')
    conn.execute(f'ALTER ROLE "{role}" SET idle_in_transaction_session_timeout = 10000')


#: Sequences the application role draws ids from (the rows it may INSERT).
APP_SEQUENCES = (
    ("prediction_inputs", "id"),
    ("predictions", "id"),
    ("rejected_requests", "id"),
    ("api_keys", "id"),
)


def _grants(role: str, database: str) -> tuple[str, ...]:
    """What the API needs and nothing more (``tests/db/test_privileges.py`` keeps the list).

    No UPDATE on ``model_versions`` (activation is the owner's CLI path), no write on
    ``audit_chain`` (links go through ``audit_append``, run as the owner), no UPDATE or DELETE
    on the trail; ``revoked_at`` may be set, never cleared (trigger of revision 0005).
    """
    sequences = ", ".join(f"pg_get_serial_sequence('{t}', '{c}')" for t, c in APP_SEQUENCES)
    return (
        f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"',
        f'GRANT USAGE ON SCHEMA public TO "{role}"',
        f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"',
        f'REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM "{role}"',
        f'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM "{role}"',
        "GRANT SELECT ON employees, performance_reviews, survey_responses, "
        f'employee_features, model_versions TO "{role}"',
        f'GRANT SELECT, INSERT ON prediction_inputs, predictions, rejected_requests TO "{role}"',
        f'GRANT SELECT, INSERT ON api_keys TO "{role}"',
        f'GRANT UPDATE (last_used_at, revoked_at) ON api_keys TO "{role}"',
        f'GRANT SELECT, INSERT, DELETE ON idempotency_keys TO "{role}"',
        f'GRANT SELECT ON audit_chain, audit_pending, purge_log TO "{role}"',
        f'GRANT EXECUTE ON FUNCTION audit_append(bigint[], bigint[], text[], text[]) TO "{role}"',
        "DO $grant$ DECLARE s text; BEGIN "
        f"FOREACH s IN ARRAY ARRAY[{sequences}] LOOP "
        f"EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', s, '{role}'); "
        "END LOOP; END $grant$",
        # People's accounts: read to sign in; the admin page creates, disables, re-enables
        # (under a new audit identity: api_key_id) and resets them; nothing deletes one (its
        # audit identity outlives it).
        f'GRANT SELECT, INSERT ON users TO "{role}"',
        "GRANT UPDATE (password_hash, must_change_password, failed_attempts, locked_until, "
        f'password_changed_at, last_sign_in_at, disabled_at, api_key_id) ON users TO "{role}"',
        # Web sessions: opened at sign-in, ended by sign-out or revocation, expired ones purged.
        f'GRANT SELECT, INSERT, DELETE ON web_sessions TO "{role}"',
        f'GRANT UPDATE (last_seen_at, revoked_at) ON web_sessions TO "{role}"',
        # Named, so that these inserts keep working where sequences are granted one by one.
        f'GRANT USAGE ON SEQUENCE users_id_seq, web_sessions_id_seq TO "{role}"',
        # HR records outcomes through the API; the monitoring reads them. No UPDATE/DELETE.
        f'GRANT SELECT, INSERT ON employee_outcomes TO "{role}"',
        f'GRANT USAGE ON SEQUENCE employee_outcomes_id_seq TO "{role}"',
        # Daily quotas, counted for every replica: one upsert per charge (attrition.db.usage).
        f'GRANT SELECT, INSERT, UPDATE ON usage_counters TO "{role}"',
    )


def _quote(value: str) -> str:
    return value.replace("'", "''")
