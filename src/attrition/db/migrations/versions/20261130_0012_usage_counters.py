"""usage counters per key and UTC day (daily quotas global to every replica)

Revision ID: 0012
Revises: 0013
Create Date: 2026-11-30 03:00:00+00:00

The daily prediction quotas were counted in a memory-mapped file per host: two replicas
gave each key twice its quota, and a restart gave it a fresh one. They are now counted
here, one row per counter, key and UTC day, taken by one atomic upsert.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "usage_counters",
        sa.Column("counter", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("used >= 0", name=op.f("ck_usage_counters_used_not_negative")),
        sa.PrimaryKeyConstraint("counter", "key", "day", name=op.f("pk_usage_counters")),
    )


def downgrade() -> None:
    op.drop_table("usage_counters")
