"""serving state of model versions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 13:05:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "model_versions",
        sa.Column("serving_state", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "model_versions", sa.Column("serving_sha256", sa.String(length=64), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("model_versions", "serving_sha256")
    op.drop_column("model_versions", "serving_state")
