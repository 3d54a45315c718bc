"""The migrations produce exactly the schema the SQLAlchemy models describe, both ways."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from attrition.db.engine import Database
from attrition.db.migrate import HEAD_REVISION, alembic_config, current_revision
from attrition.db.models import Base

#: What the migrations create, read back from PostgreSQL's catalogs (schema ``public``).
CATALOG_QUERIES = {
    "tables": "SELECT relname, relkind::text FROM pg_class"
    " WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'm', 'S')",
    "columns": "SELECT table_name, column_name, data_type, udt_name, is_nullable,"
    " column_default, character_maximum_length, numeric_precision, numeric_scale,"
    " is_identity, identity_generation FROM information_schema.columns"
    " WHERE table_schema = 'public'",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'",
    "functions": "SELECT proname, pg_get_functiondef(oid) FROM pg_proc"
    " WHERE pronamespace = 'public'::regnamespace",
    "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger"
    " WHERE NOT tgisinternal",
    "types": "SELECT t.typname, e.enumsortorder::text, e.enumlabel FROM pg_type t"
    " JOIN pg_enum e ON e.enumtypid = t.oid WHERE t.typnamespace = 'public'::regnamespace",
}


def catalog(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """The schema's objects, sorted; Alembic's own bookkeeping table left out."""
    with db.owner_engine().connect() as conn:
        return {
            name: sorted(
                (tuple(row) for row in conn.execute(text(query)) if "alembic_version" not in row),
                key=repr,
            )
            for name, query in CATALOG_QUERIES.items()
        }


def _alembic(db: Database, verb: str, revision: str) -> None:
    cfg = alembic_config()
    with db.owner_engine().begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, revision)


def test_models_and_migrations_agree(database: Database) -> None:
    with database.owner_engine().connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_database_is_at_head(database: Database) -> None:
    assert current_revision(database.owner_engine()) == HEAD_REVISION == "0016"
    with database.owner_engine().connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('purge_log') IS NOT NULL"))


def test_downgrade_to_base_then_upgrade_rebuilds_the_same_schema(
    database: Database, scratch: Database
) -> None:
    """Every downgrade removes what its upgrade made; upgrading again gives the same schema."""
    expected = catalog(database)
    assert len(expected["tables"]) >= 10 and expected["functions"] and expected["triggers"]

    _alembic(scratch, "upgrade", "head")
    assert catalog(scratch) == expected
    _alembic(scratch, "downgrade", "base")
    assert current_revision(scratch.owner_engine()) is None
    assert catalog(scratch) == {name: [] for name in CATALOG_QUERIES}

    _alembic(scratch, "upgrade", "head")
    assert current_revision(scratch.owner_engine()) == HEAD_REVISION
    assert catalog(scratch) == expected
    with scratch.owner_engine().connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
