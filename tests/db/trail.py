"""Records for filling the audit trail in the db tests, as the service writes them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from sqlalchemy import text

from attrition.data.vocabulary import FEATURE_NAMES
from attrition.db.audit import PredictionRecord
from attrition.db.chain import AuditKey, record_mac
from attrition.db.engine import Database, libpq_conninfo
from attrition.db.writer import insert_many


def features(database: Database) -> list[dict[str, Any]]:
    """Every stored employee's id and features, as the API would receive them."""
    with database.owner_engine().connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT id_employee, {', '.join(FEATURE_NAMES)} FROM employee_features "
                "ORDER BY id_employee"
            )
        ).mappings()
        return [
            {k: (float(v) if k == "augmentation_salaire_precedente" else v) for k, v in r.items()}
            for r in rows
        ]


def record(
    n: int,
    row: dict[str, Any],
    id_employee: int | None,
    model_id: int,
    key: AuditKey,
    *,
    prefix: str = "plan",
) -> PredictionRecord:
    """The ``n``-th record of a fill, signed with ``key`` as the service signs what it answers."""
    values = {k: row[k] for k in FEATURE_NAMES}
    payload = {**values, **({"id_employee": id_employee} if id_employee else {})}
    out = PredictionRecord(
        request_id=f"{prefix}-{n}",
        api_key_id=None,
        source="api",
        id_employee=id_employee,
        features=values,
        payload=payload,
        model_version_id=model_id,
        probability=0.25,
        label="reste",
        threshold=0.4,
        risk_level="moyen",
        explanation={
            "valeur_de_base": -1.0,
            "logit": -1.0,
            "facteurs_hausse": [],
            "facteurs_baisse": [],
        },
        latency_ms=0.2,
    )
    out.record_mac = record_mac(key, out.mac_values())
    return out


async def active_model_id(conn: psycopg.AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT id FROM model_versions WHERE is_active")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def fill(
    conn: psycopg.AsyncConnection[Any],
    rows: list[dict[str, Any]],
    start: int,
    count: int,
    model_id: int,
    key: AuditKey,
    *,
    prefix: str,
    chunk: int = 1000,
) -> list[int]:
    """Records ``start`` to ``start + count`` written by the writer's statement, in ``chunk``s.

    In the caller's transaction; returns their prediction ids, in order.
    """
    ids: list[int] = []
    for first in range(start, start + count, chunk):
        batch = [
            record(n, rows[n % len(rows)], None, model_id, key, prefix=prefix)
            for n in range(first, min(first + chunk, start + count))
        ]
        ids += [w.prediction_id for w in await insert_many(conn, batch)]
    return ids


@asynccontextmanager
async def rolled_back(
    database: Database,
) -> AsyncIterator[tuple[psycopg.AsyncConnection[Any], int]]:
    """An owner connection in a transaction rolled back at the end, and the active model's id."""
    async with await psycopg.AsyncConnection.connect(libpq_conninfo(database.owner_url)) as conn:
        async with conn.transaction(force_rollback=True):
            yield conn, await active_model_id(conn)
