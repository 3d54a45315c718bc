"""The migrations produce exactly the schema the SQLAlchemy models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from attrition.db.engine import Database
from attrition.db.migrate import HEAD_REVISION, current_revision
from attrition.db.models import Base


def test_models_and_migrations_agree(database: Database) -> None:
    with database.owner_engine().connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_database_is_at_head(database: Database) -> None:
    assert current_revision(database.owner_engine()) == HEAD_REVISION == "0013"
    with database.owner_engine().connect() as conn:
        assert conn.scalar(text("SELECT to_regclass('purge_log') IS NOT NULL"))
