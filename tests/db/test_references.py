"""The audit trail's references (key, model version, input): checked, never locking.

A prediction input names the key that sent it, a prediction the model version that made it
and the input it answered. Foreign keys checked that row by row, each check taking a share
lock on the referenced row: every writer locked the same key row and the same model row
(MultiXacts under load), and every prediction locked its own input row (one more WAL record
per prediction). The references are now checked once per statement, and keys and model
versions are never deleted (a key is revoked, a version retired), so no reference can dangle
(ADR 27); an input is deleted only after its prediction (ADR 30).
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


@pytest.mark.parametrize("write", [_insert, _copy, _group], ids=["insert", "copy", "group"])
@pytest.mark.usefixtures("keys")
def test_recording_leaves_no_lock_on_the_input_rows(
    database: Database, model_id: int, write: Any
) -> None:
    # A foreign key on predictions.input_id locked each input row (FOR KEY SHARE): the row
    # kept the locker in its xmax, and the lock cost a WAL record per prediction.
    marker = f"ref-xmax-{uuid.uuid4().hex}"
    write(database, model_id, client_request_id=marker)
    with database.owner_engine().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT i.xmax::text, p.id IS NOT NULL FROM prediction_inputs i "
                "LEFT JOIN predictions p ON p.input_id = i.id "
                "WHERE i.client_request_id = :marker"
            ),
            {"marker": marker},
        ).all()
    assert rows, "nothing written"
    assert all(answered for _, answered in rows)
    assert [xmax for xmax, _ in rows] == ["0"] * len(rows)


def _as_app(database: Database, statement: str, **params: Any) -> None:
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(libpq_conninfo(database.app_url)) as conn:
            await conn.execute(statement, params)
            await conn.commit()

    asyncio.run(main())


@pytest.mark.usefixtures("keys")
def test_a_prediction_naming_an_unknown_input_is_refused(database: Database, model_id: int) -> None:
    statement = (
        "INSERT INTO predictions (input_id, model_version_id, probability, label, threshold, "
        "risk_level, explanation, latency_ms, record_mac) VALUES (%(input_id)s, %(model)s, 0.5, "
        "'reste', 0.4, 'moyen', '{}', 0.1, repeat('0', 64))"
    )
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match="predictions.input_id : "):
        _as_app(database, statement, input_id=9_000_000_000_000, model=model_id)


@pytest.mark.usefixtures("keys")
def test_an_input_still_answered_is_never_deleted(database: Database, model_id: int) -> None:
    marker = f"ref-del-{uuid.uuid4().hex}"
    _insert(database, model_id, client_request_id=marker)
    with database.owner_engine().connect() as conn:
        # As the purge does (its own transaction may delete the trail), but the input first.
        conn.execute(text("SET LOCAL attrition.allow_purge = 'on'"))
        with pytest.raises(Exception, match="prediction_inputs : l'entrée .* a encore sa"):
            conn.execute(
                text("DELETE FROM prediction_inputs WHERE client_request_id = :m"), {"m": marker}
            )
        conn.rollback()
        # In the purge's order, prediction then input, both go.
        conn.execute(text("SET LOCAL attrition.allow_purge = 'on'"))
        conn.execute(
            text(
                "DELETE FROM predictions WHERE input_id IN "
                "(SELECT id FROM prediction_inputs WHERE client_request_id = :m)"
            ),
            {"m": marker},
        )
        gone = conn.execute(
            text("DELETE FROM prediction_inputs WHERE client_request_id = :m"), {"m": marker}
        )
        assert gone.rowcount == 1
        conn.rollback()


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("TRUNCATE prediction_inputs", "a encore sa prédiction"),
        (
            "UPDATE prediction_inputs SET id = -id WHERE client_request_id = :m",
            "ne change jamais",
        ),
        (
            "UPDATE predictions SET input_id = -input_id WHERE input_id IN "
            "(SELECT id FROM prediction_inputs WHERE client_request_id = :m)",
            "ne change jamais",
        ),
    ],
    ids=["truncate", "renumber-input", "reassign-prediction"],
)
@pytest.mark.usefixtures("keys")
def test_no_prediction_loses_its_input_even_with_the_purge_setting(
    database: Database, model_id: int, statement: str, message: str
) -> None:
    marker = f"ref-keep-{uuid.uuid4().hex}"
    _insert(database, model_id, client_request_id=marker)
    with database.owner_engine().connect() as conn:
        conn.execute(text("SET LOCAL attrition.allow_purge = 'on'"))
        with pytest.raises(Exception, match=message):
            conn.execute(text(statement), {"m": marker})
        conn.rollback()
