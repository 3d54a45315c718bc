"""employee outcomes fed back by HR, and the record of every model activation

Revision ID: 0007
Revises: 0008
Create Date: 2026-11-30 00:20:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # HR records outcomes with an ``rh`` key: no prediction, no audit reading.
    op.execute("ALTER TYPE api_role ADD VALUE IF NOT EXISTS 'rh'")
    op.create_table(
        "employee_outcomes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("id_employee", sa.Integer(), nullable=False),
        sa.Column("statut", sa.String(length=16), nullable=False),
        sa.Column("date_constat", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "statut IN ('parti', 'present')", name=op.f("ck_employee_outcomes_statut")
        ),
        sa.CheckConstraint(
            "source IN ('api', 'cli', 'import')", name=op.f("ck_employee_outcomes_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_employee_outcomes")),
        sa.UniqueConstraint(
            "id_employee", "statut", "date_constat", name=op.f("uq_employee_outcomes_id_employee")
        ),
    )
    op.create_index(op.f("ix_employee_outcomes_id_employee"), "employee_outcomes", ["id_employee"])
    # What happened is a fact recorded once: corrections are new rows, never edits.
    op.execute(
        "CREATE TRIGGER trg_employee_outcomes_append_only BEFORE UPDATE OR DELETE ON "
        "employee_outcomes FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()"
    )
    op.create_table(
        "model_activations",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("previous_version_id", sa.Integer(), nullable=True),
        sa.Column(
            "activated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "activated_by",
            sa.String(length=64),
            server_default=sa.text("current_user"),
            nullable=False,
        ),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("refusals", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("checks", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "NOT forced OR length(trim(reason)) > 0", name=op.f("ck_model_activations_reason")
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_activations_model_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["previous_version_id"],
            ["model_versions.id"],
            name=op.f("fk_model_activations_previous_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_activations")),
    )
    op.execute(
        "CREATE TRIGGER trg_model_activations_append_only BEFORE UPDATE OR DELETE ON "
        "model_activations FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()"
    )


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value: ``rh`` stays in api_role (unused).
    op.drop_table("model_activations")
    op.drop_index(op.f("ix_employee_outcomes_id_employee"), table_name="employee_outcomes")
    op.drop_table("employee_outcomes")
