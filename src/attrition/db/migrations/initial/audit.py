"""Revision 0001, the audit trail: inputs, predictions, rejections, and its append-only lock."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# The audit trail is append-only: UPDATE, DELETE and TRUNCATE are refused even for the owner,
# unless a purge (``attrition rgpd purge``) sets ``attrition.allow_purge`` for its transaction.
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('attrition.allow_purge', true), '') = 'on' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RAISE EXCEPTION 'la table % est en ajout seul : % refusé', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def create_prediction_inputs() -> None:
    """Every model input, as received."""
    op.create_table(
        "prediction_inputs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column(
            "source",
            sa.Enum("api", "batch", "employee", "web", name="prediction_source"),
            nullable=False,
        ),
        sa.Column("id_employee", sa.Integer(), nullable=True),
        sa.Column("batch_id", sa.Uuid(), nullable=True),
        sa.Column("batch_row", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("age", sa.SmallInteger(), nullable=False),
        sa.Column(
            "genre", postgresql.ENUM("F", "M", name="genre", create_type=False), nullable=False
        ),
        sa.Column("revenu_mensuel", sa.Integer(), nullable=False),
        sa.Column(
            "statut_marital",
            postgresql.ENUM(
                "Célibataire", "Marié(e)", "Divorcé(e)", name="statut_marital", create_type=False
            ),
            nullable=False,
        ),
        sa.Column(
            "departement",
            postgresql.ENUM(
                "Commercial",
                "Consulting",
                "Ressources Humaines",
                name="departement",
                create_type=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "poste",
            postgresql.ENUM(
                "Assistant de Direction",
                "Cadre Commercial",
                "Consultant",
                "Directeur Technique",
                "Manager",
                "Représentant Commercial",
                "Ressources Humaines",
                "Senior Manager",
                "Tech Lead",
                name="poste",
                create_type=False,
            ),
            nullable=False,
        ),
        sa.Column("nombre_experiences_precedentes", sa.SmallInteger(), nullable=False),
        sa.Column("annees_experience_totale", sa.SmallInteger(), nullable=False),
        sa.Column("annees_dans_l_entreprise", sa.SmallInteger(), nullable=False),
        sa.Column("annees_dans_le_poste_actuel", sa.SmallInteger(), nullable=False),
        sa.Column("satisfaction_employee_environnement", sa.SmallInteger(), nullable=False),
        sa.Column("note_evaluation_precedente", sa.SmallInteger(), nullable=False),
        sa.Column("niveau_hierarchique_poste", sa.SmallInteger(), nullable=False),
        sa.Column("satisfaction_employee_nature_travail", sa.SmallInteger(), nullable=False),
        sa.Column("satisfaction_employee_equipe", sa.SmallInteger(), nullable=False),
        sa.Column("satisfaction_employee_equilibre_pro_perso", sa.SmallInteger(), nullable=False),
        sa.Column("note_evaluation_actuelle", sa.SmallInteger(), nullable=False),
        sa.Column("heures_supplementaires", sa.Boolean(), nullable=False),
        sa.Column("augmentation_salaire_precedente", sa.Double(), nullable=False),
        sa.Column("nombre_participation_pee", sa.SmallInteger(), nullable=False),
        sa.Column("nb_formations_suivies", sa.SmallInteger(), nullable=False),
        sa.Column("distance_domicile_travail", sa.SmallInteger(), nullable=False),
        sa.Column("niveau_education", sa.SmallInteger(), nullable=False),
        sa.Column(
            "domaine_etude",
            sa.Enum(
                "Autre",
                "Entrepreunariat",
                "Infra & Cloud",
                "Marketing",
                "Ressources Humaines",
                "Transformation Digitale",
                name="domaine_etude",
            ),
            nullable=False,
        ),
        sa.Column(
            "frequence_deplacement",
            sa.Enum("Aucun", "Occasionnel", "Frequent", name="frequence_deplacement"),
            nullable=False,
        ),
        sa.Column("annees_depuis_la_derniere_promotion", sa.SmallInteger(), nullable=False),
        sa.Column("annees_sous_responsable_actuel", sa.SmallInteger(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_prediction_inputs_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_inputs")),
    )
    op.create_index(
        "ix_prediction_inputs_api_key_id_id",
        "prediction_inputs",
        ["api_key_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_prediction_inputs_batch_id", "prediction_inputs", ["batch_id"], unique=False
    )
    op.create_index(
        "ix_prediction_inputs_id_employee", "prediction_inputs", ["id_employee"], unique=False
    )
    op.create_index(
        "ix_prediction_inputs_received_at_id",
        "prediction_inputs",
        ["received_at", "id"],
        unique=False,
    )
    op.create_index(
        "uq_prediction_inputs_idempotency",
        "prediction_inputs",
        ["api_key_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL AND batch_row = 0"),
    )


def create_rejected_requests() -> None:
    """Every refused request, with the reasons."""
    op.create_table(
        "rejected_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("route", sa.String(length=255), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("errors", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("payload_excerpt", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_rejected_requests_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejected_requests")),
    )
    op.create_index(
        "ix_rejected_requests_received_at", "rejected_requests", ["received_at"], unique=False
    )


def create_predictions() -> None:
    """Every model output, one per input."""
    op.create_table(
        "predictions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("input_id", sa.BigInteger(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Double(), nullable=False),
        sa.Column("label", sa.Enum("depart", "reste", name="prediction_label"), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=False),
        sa.Column(
            "risk_level", sa.Enum("faible", "moyen", "eleve", name="risk_level"), nullable=False
        ),
        sa.Column("explanation", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("probability BETWEEN 0 AND 1", name=op.f("ck_predictions_probability")),
        sa.ForeignKeyConstraint(
            ["input_id"],
            ["prediction_inputs.id"],
            name=op.f("fk_predictions_input_id_prediction_inputs"),
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_predictions_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
        sa.UniqueConstraint("input_id", name=op.f("uq_predictions_input_id")),
    )
    op.create_index(
        "ix_predictions_model_version_id", "predictions", ["model_version_id"], unique=False
    )


def create_append_only_guard() -> None:
    """The function and triggers that refuse UPDATE, DELETE and TRUNCATE."""
    op.execute(APPEND_ONLY_FUNCTION)
    for table in ("prediction_inputs", "predictions"):
        op.execute(
            f"CREATE TRIGGER trg_{table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()"
        )
        op.execute(
            f"CREATE TRIGGER trg_{table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change()"
        )
