"""Which scans PostgreSQL plans for a statement (``EXPLAIN``, never ``EXPLAIN ANALYZE``).

Used by ``make bench-scale`` and by the tests that check the per-employee reads of the audit
trail are index-backed: their cost must follow what one employee has, not the whole trail.
The plan is read with the planner's default settings (``enable_seqscan`` left on): forcing an
index would prove nothing about what the service gets.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection


@dataclass(frozen=True, slots=True)
class Scan:
    """One node of a plan; ``relation`` and ``index`` set on those that read one."""

    node: str
    relation: str | None
    index: str | None


def _walk(plan: dict[str, Any]) -> Iterator[Scan]:
    yield Scan(plan["Node Type"], plan.get("Relation Name"), plan.get("Index Name"))
    for child in plan.get("Plans", ()):
        yield from _walk(child)


async def scans(conn: AsyncConnection[Any], sql: str, params: Sequence[Any] = ()) -> list[Scan]:
    """The nodes of ``sql``'s plan, outermost first."""
    cur = await conn.execute("EXPLAIN (FORMAT JSON) " + sql, params)
    row = await cur.fetchone()
    assert row is not None
    return list(_walk(row[0][0]["Plan"]))


def sequential(found: Sequence[Scan], relations: Sequence[str]) -> list[str]:
    """The relations among ``relations`` that the plan reads in full."""
    return [
        s.relation
        for s in found
        if s.node == "Seq Scan" and s.relation is not None and s.relation in relations
    ]


def sorts(found: Sequence[Scan]) -> list[str]:
    """The sort nodes of a plan: an index that gives the order needs none."""
    return [s.node for s in found if s.node in {"Sort", "Incremental Sort", "Top-N Sort"}]
