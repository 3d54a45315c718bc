"""Stored employees, read with psycopg 3 from the ``employee_features`` view.

The view joins the three extracts and already gives JSON-ready values (the salary raise as
double precision). Functions here never commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from attrition.data.vocabulary import FEATURE_NAMES

# Column names come from the vocabulary; every value is a bound parameter.
_SELECT_FEATURES = (
    "SELECT "  # noqa: S608
    + ", ".join(FEATURE_NAMES)
    + " FROM employee_features WHERE id_employee = %s"
)


async def get_employee(conn: AsyncConnection[Any], id_employee: int) -> dict[str, Any] | None:
    """The employee's full record (every column of the view), or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM employee_features WHERE id_employee = %s", (id_employee,))
        return await cur.fetchone()


async def list_employees(
    conn: AsyncConnection[Any], *, after: int, limit: int
) -> list[dict[str, Any]]:
    """Records by increasing id, those after ``after``, at most ``limit``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM employee_features WHERE id_employee > %s ORDER BY id_employee LIMIT %s",
            (after, limit),
        )
        return await cur.fetchall()


async def get_features(conn: AsyncConnection[Any], id_employee: int) -> dict[str, Any] | None:
    """The employee's features, as the model expects them, or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SELECT_FEATURES, (id_employee,))
        return await cur.fetchone()


async def existing_ids(conn: AsyncConnection[Any], ids: Iterable[int]) -> set[int]:
    """Those of ``ids`` that have a stored record."""
    cur = await conn.execute(
        "SELECT id_employee FROM employees WHERE id_employee = ANY(%s)", (list(ids),)
    )
    return {row[0] for row in await cur.fetchall()}
