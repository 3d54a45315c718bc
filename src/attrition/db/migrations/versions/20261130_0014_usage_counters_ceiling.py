"""usage counters keep the ceiling they were counted under, and never pass it

Revision ID: 0014
Revises: 0012
Create Date: 2026-11-30 08:30:00+00:00

A group of predictions took its key's daily count first, then inserted its rows: the count's
row stayed locked for the whole write and its commit, so the groups of one key from two
processes (or replicas) were written one after the other. The group's statement now inserts
its rows first and adds to the count last, and the database itself refuses a count above
its ceiling (this check): a refused take aborts the statement, so nothing is written, as
before. Rows counted before this revision have no ceiling; the next take sets it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("usage_counters", sa.Column("ceiling", sa.BigInteger(), nullable=True))
    op.create_check_constraint(
        op.f("ck_usage_counters_within_ceiling"),
        "usage_counters",
        "ceiling IS NULL OR used <= ceiling",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_usage_counters_within_ceiling"), "usage_counters", type_="check")
    op.drop_column("usage_counters", "ceiling")
