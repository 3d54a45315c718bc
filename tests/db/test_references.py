"""The audit trail's references to its key and its model version: checked, never locking.

A prediction input names the key that sent it, a prediction the model version that made it.
Foreign keys checked that row by row, each check taking a share lock on the referenced row:
every writer locked the same key row and the same model row (MultiXacts under load). The
references are now checked once per statement, and keys and model versions are never
deleted (a key is revoked, a version retired), so no reference can dangle (ADR 27).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from attrition.db import bulk
from attrition.db.audit import insert_predictions
from attrition.db.engine import Database, libpq_conninfo
from tests.db.writing import record, with_writer


def _key_id(database: Database) -> int:
    with database.owner_engine().connect() as conn:
        return int(conn.scalar(text("SELECT min(id) FROM api_keys")))


def _locked(database: Database, table: str, row_id: int) -> bool:
    """Whether another transaction holds a lock on the row (``FOR UPDATE NOWAIT`` refused)."""
    with database.owner_engine().connect() as conn:
        try:
            conn.execute(
                text(f"SELECT 1 FROM {table} WHERE id = :id FOR UPDATE NOWAIT"),
                {"id": row_id},
            )
        except Exception as exc:  # sqlalchemy wraps psycopg's LockNotAvailable
            assert "could not obtain lock" in str(exc) or "LockNotAvailable" in repr(exc)
            return True
        finally:
            conn.rollback()
    return False


@pytest.mark.usefixtures("keys")
def test_recording_locks_neither_the_key_nor_the_model_version(
    database: Database, model_id: int
) -> None:
    key_id = _key_id(database)

    async def main() -> tuple[bool, bool]:
        async with await psycopg.AsyncConnection.connect(libpq_conninfo(database.app_url)) as conn:
            await insert_predictions(
                conn, [record(f"ref-lock-{uuid.uuid4().hex}", model_id, api_key_id=key_id)]
            )
            # Still in its transaction: the rows are written, not committed.
            locked = (
                _locked(database, "api_keys", key_id),
                _locked(database, "model_versions", model_id),
            )
            await conn.rollback()
            return locked

    assert asyncio.run(main()) == (False, False)


def _insert(database: Database, model_id: int, **changes: Any) -> None:
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(libpq_conninfo(database.app_url)) as conn:
            await insert_predictions(conn, [record(f"ref-{uuid.uuid4().hex}", model_id, **changes)])

    asyncio.run(main())


def _copy(database: Database, model_id: int, **changes: Any) -> None:
    async def main() -> None:
        async with (
            await psycopg.AsyncConnection.connect(libpq_conninfo(database.app_url)) as conn,
            conn.transaction(),
        ):
            rows = [
                record(f"ref-copy-{uuid.uuid4().hex}-{i}", model_id, **changes) for i in range(3)
            ]
            await bulk.copy_predictions(conn, rows)

    asyncio.run(main())


def _group(database: Database, model_id: int, **changes: Any) -> None:
    async def work(writer: Any, _pool: Any) -> None:
        await writer.write([record(f"ref-group-{uuid.uuid4().hex}", model_id, **changes)])

    with_writer(database, work)


@pytest.mark.parametrize("write", [_insert, _copy, _group], ids=["insert", "copy", "group"])
@pytest.mark.usefixtures("keys")
def test_an_unknown_key_or_model_version_is_refused(
    database: Database, model_id: int, write: Any
) -> None:
    key_id = _key_id(database)
    write(database, model_id, api_key_id=key_id)  # known: written
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="clé API"):
        write(database, model_id, api_key_id=2_000_000_000)
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="version de modèle"):
        write(database, 2_000_000_000, api_key_id=key_id)


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM api_keys WHERE id = -1",
        "DELETE FROM model_versions WHERE id = -1",
        "TRUNCATE api_keys CASCADE",
        "TRUNCATE model_versions CASCADE",
        "UPDATE api_keys SET id = -id WHERE id = (SELECT min(id) FROM api_keys)",
        "UPDATE model_versions SET id = -id WHERE is_active",
    ],
)
@pytest.mark.usefixtures("keys")
def test_keys_and_model_versions_are_never_deleted_or_renumbered(
    database: Database, statement: str
) -> None:
    with database.owner_engine().connect() as conn:
        with pytest.raises(Exception, match="ne sont jamais supprim|ne change jamais"):
            conn.execute(text(statement))
        conn.rollback()
