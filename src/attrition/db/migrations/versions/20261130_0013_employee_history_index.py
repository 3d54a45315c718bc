"""one employee's history read in order from an index (id_employee, id)

Revision ID: 0013
Revises: 0011
Create Date: 2026-11-30 03:15:00+00:00

The history of one employee and their GDPR export list their predictions newest first. With
an index on ``id_employee`` alone, PostgreSQL fetched every prediction of the employee and
sorted them before keeping a page: the cost grew with the employee's whole history, so with
the trail. ``(id_employee, id)`` gives the rows already in order (read backwards), and the
page stops after its last row. It replaces the one-column index (same leading column).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_prediction_inputs_id_employee_id", "prediction_inputs", ["id_employee", "id"]
    )
    op.drop_index("ix_prediction_inputs_id_employee", table_name="prediction_inputs")


def downgrade() -> None:
    op.create_index("ix_prediction_inputs_id_employee", "prediction_inputs", ["id_employee"])
    op.drop_index("ix_prediction_inputs_id_employee_id", table_name="prediction_inputs")
