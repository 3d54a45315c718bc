"""inputs the model does not use are optional (genre, statut_marital)

Revision ID: 0011
Revises: 0005
Create Date: 2026-11-30 00:20:00+00:00

Sex and family situation are not model inputs (protected criteria): the API no longer asks
for them, and a prediction made without them stores NULL (GDPR art. 5-1-c, data
minimisation). The employees table keeps them: they come from the HR extracts and serve the
fairness audit.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("prediction_inputs", "genre", nullable=True)
    op.alter_column("prediction_inputs", "statut_marital", nullable=True)


def downgrade() -> None:
    # Rows recorded without these fields cannot get them back: the downgrade refuses them.
    op.alter_column("prediction_inputs", "statut_marital", nullable=False)
    op.alter_column("prediction_inputs", "genre", nullable=False)
