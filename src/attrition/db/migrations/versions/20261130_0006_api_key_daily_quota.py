"""daily prediction quota per API key

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-30 00:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL: the server's default ceiling (ATTRITION_API__PREDICTIONS_PER_DAY).
    op.add_column("api_keys", sa.Column("daily_quota", sa.Integer(), nullable=True))
    op.create_check_constraint("daily_quota_positive", "api_keys", "daily_quota > 0")


def downgrade() -> None:
    # op.f: the name is final, the naming convention must not prefix it a second time.
    op.drop_constraint(op.f("ck_api_keys_daily_quota_positive"), "api_keys", type_="check")
    op.drop_column("api_keys", "daily_quota")
