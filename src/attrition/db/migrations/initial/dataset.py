"""Revision 0001, the dataset: the three extracts' tables and the view that joins them."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

EMPLOYEE_FEATURES_VIEW = """
CREATE VIEW employee_features AS
SELECT
    e.id_employee,
    e.age,
    e.genre,
    e.revenu_mensuel,
    e.statut_marital,
    e.departement,
    e.poste,
    e.nombre_experiences_precedentes,
    e.annees_experience_totale,
    e.annees_dans_l_entreprise,
    e.annees_dans_le_poste_actuel,
    r.satisfaction_employee_environnement,
    r.note_evaluation_precedente,
    r.niveau_hierarchique_poste,
    r.satisfaction_employee_nature_travail,
    r.satisfaction_employee_equipe,
    r.satisfaction_employee_equilibre_pro_perso,
    r.note_evaluation_actuelle,
    r.heures_supplementaires,
    r.augmentation_salaire_precedente::double precision AS augmentation_salaire_precedente,
    s.nombre_participation_pee,
    s.nb_formations_suivies,
    s.distance_domicile_travail,
    s.niveau_education,
    s.domaine_etude,
    s.frequence_deplacement,
    s.annees_depuis_la_derniere_promotion,
    s.annees_sous_responsable_actuel,
    e.nombre_heures_travaillees,
    s.nombre_employes_sous_responsabilite,
    s.ayant_enfants,
    s.a_quitte_l_entreprise
FROM employees e
JOIN performance_reviews r USING (id_employee)
JOIN survey_responses s USING (id_employee)
"""


def create_employees() -> None:
    """The HR information system extract (SIRH), one row per employee."""
    op.create_table(
        "employees",
        sa.Column("id_employee", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("age", sa.SmallInteger(), nullable=False),
        sa.Column("genre", sa.Enum("F", "M", name="genre"), nullable=False),
        sa.Column("revenu_mensuel", sa.Integer(), nullable=False),
        sa.Column(
            "statut_marital",
            sa.Enum("Célibataire", "Marié(e)", "Divorcé(e)", name="statut_marital"),
            nullable=False,
        ),
        sa.Column(
            "departement",
            sa.Enum("Commercial", "Consulting", "Ressources Humaines", name="departement"),
            nullable=False,
        ),
        sa.Column(
            "poste",
            sa.Enum(
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
            ),
            nullable=False,
        ),
        sa.Column("nombre_experiences_precedentes", sa.SmallInteger(), nullable=False),
        sa.Column("nombre_heures_travaillees", sa.SmallInteger(), nullable=False),
        sa.Column("annees_experience_totale", sa.SmallInteger(), nullable=False),
        sa.Column("annees_dans_l_entreprise", sa.SmallInteger(), nullable=False),
        sa.Column("annees_dans_le_poste_actuel", sa.SmallInteger(), nullable=False),
        sa.Column(
            "loaded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint("age BETWEEN 16 AND 70", name=op.f("ck_employees_age")),
        sa.CheckConstraint(
            "annees_dans_l_entreprise <= annees_experience_totale",
            name=op.f("ck_employees_anciennete"),
        ),
        sa.CheckConstraint(
            "annees_dans_l_entreprise BETWEEN 0 AND 56",
            name=op.f("ck_employees_annees_dans_l_entreprise"),
        ),
        sa.CheckConstraint(
            "annees_dans_le_poste_actuel <= annees_dans_l_entreprise",
            name=op.f("ck_employees_poste"),
        ),
        sa.CheckConstraint(
            "annees_dans_le_poste_actuel BETWEEN 0 AND 56",
            name=op.f("ck_employees_annees_dans_le_poste_actuel"),
        ),
        sa.CheckConstraint(
            "annees_experience_totale <= age - 14", name=op.f("ck_employees_experience_age")
        ),
        sa.CheckConstraint(
            "annees_experience_totale BETWEEN 0 AND 56",
            name=op.f("ck_employees_annees_experience_totale"),
        ),
        sa.CheckConstraint(
            "nombre_experiences_precedentes BETWEEN 0 AND 20",
            name=op.f("ck_employees_nombre_experiences_precedentes"),
        ),
        sa.CheckConstraint(
            "nombre_heures_travaillees BETWEEN 0 AND 100", name=op.f("ck_employees_heures")
        ),
        sa.CheckConstraint(
            "revenu_mensuel BETWEEN 500 AND 50000", name=op.f("ck_employees_revenu_mensuel")
        ),
        sa.PrimaryKeyConstraint("id_employee", name=op.f("pk_employees")),
    )


def create_performance_reviews() -> None:
    """The performance reviews extract, one per employee."""
    op.create_table(
        "performance_reviews",
        sa.Column("id_employee", sa.Integer(), nullable=False),
        sa.Column("eval_number", sa.String(length=16), nullable=False),
        sa.Column("satisfaction_employee_environnement", sa.SmallInteger(), nullable=False),
        sa.Column("note_evaluation_precedente", sa.SmallInteger(), nullable=False),
        sa.Column("niveau_hierarchique_poste", sa.SmallInteger(), nullable=False),
        sa.Column("satisfaction_employee_nature_travail", sa.SmallInteger(), nullable=False),
        sa.Column("satisfaction_employee_equipe", sa.SmallInteger(), nullable=False),
        sa.Column("satisfaction_employee_equilibre_pro_perso", sa.SmallInteger(), nullable=False),
        sa.Column("note_evaluation_actuelle", sa.SmallInteger(), nullable=False),
        sa.Column("heures_supplementaires", sa.Boolean(), nullable=False),
        sa.Column(
            "augmentation_salaire_precedente", sa.Numeric(precision=5, scale=2), nullable=False
        ),
        sa.CheckConstraint(
            "eval_number = 'E_' || id_employee", name=op.f("ck_performance_reviews_eval_number")
        ),
        sa.CheckConstraint(
            "augmentation_salaire_precedente BETWEEN 0 AND 100",
            name=op.f("ck_performance_reviews_augmentation_salaire_precedente"),
        ),
        sa.CheckConstraint(
            "niveau_hierarchique_poste BETWEEN 1 AND 5",
            name=op.f("ck_performance_reviews_niveau_hierarchique_poste"),
        ),
        sa.CheckConstraint(
            "note_evaluation_actuelle BETWEEN 1 AND 4",
            name=op.f("ck_performance_reviews_note_evaluation_actuelle"),
        ),
        sa.CheckConstraint(
            "note_evaluation_precedente BETWEEN 1 AND 4",
            name=op.f("ck_performance_reviews_note_evaluation_precedente"),
        ),
        sa.CheckConstraint(
            "satisfaction_employee_environnement BETWEEN 1 AND 4",
            name=op.f("ck_performance_reviews_satisfaction_employee_environnement"),
        ),
        sa.CheckConstraint(
            "satisfaction_employee_equilibre_pro_perso BETWEEN 1 AND 4",
            name=op.f("ck_performance_reviews_satisfaction_employee_equilibre_pro_perso"),
        ),
        sa.CheckConstraint(
            "satisfaction_employee_equipe BETWEEN 1 AND 4",
            name=op.f("ck_performance_reviews_satisfaction_employee_equipe"),
        ),
        sa.CheckConstraint(
            "satisfaction_employee_nature_travail BETWEEN 1 AND 4",
            name=op.f("ck_performance_reviews_satisfaction_employee_nature_travail"),
        ),
        sa.ForeignKeyConstraint(
            ["id_employee"],
            ["employees.id_employee"],
            name=op.f("fk_performance_reviews_id_employee_employees"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_employee", name=op.f("pk_performance_reviews")),
        sa.UniqueConstraint("eval_number", name=op.f("uq_performance_reviews_eval_number")),
    )


def create_survey_responses() -> None:
    """The survey extract, one per employee, with the target."""
    op.create_table(
        "survey_responses",
        sa.Column("id_employee", sa.Integer(), nullable=False),
        sa.Column("code_sondage", sa.String(length=16), nullable=False),
        sa.Column("a_quitte_l_entreprise", sa.Boolean(), nullable=False),
        sa.Column("nombre_participation_pee", sa.SmallInteger(), nullable=False),
        sa.Column("nb_formations_suivies", sa.SmallInteger(), nullable=False),
        sa.Column("nombre_employes_sous_responsabilite", sa.SmallInteger(), nullable=False),
        sa.Column("distance_domicile_travail", sa.SmallInteger(), nullable=False),
        sa.Column("niveau_education", sa.SmallInteger(), nullable=False),
        sa.Column(
            "domaine_etude",
            postgresql.ENUM(
                "Autre",
                "Entrepreunariat",
                "Infra & Cloud",
                "Marketing",
                "Ressources Humaines",
                "Transformation Digitale",
                name="domaine_etude",
                create_type=False,
            ),
            nullable=False,
        ),
        sa.Column("ayant_enfants", sa.Boolean(), nullable=False),
        sa.Column(
            "frequence_deplacement",
            postgresql.ENUM(
                "Aucun", "Occasionnel", "Frequent", name="frequence_deplacement", create_type=False
            ),
            nullable=False,
        ),
        sa.Column("annees_depuis_la_derniere_promotion", sa.SmallInteger(), nullable=False),
        sa.Column("annees_sous_responsable_actuel", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint(
            "ltrim(code_sondage, '0')::int = id_employee",
            name=op.f("ck_survey_responses_code_sondage"),
        ),
        sa.CheckConstraint(
            "annees_depuis_la_derniere_promotion BETWEEN 0 AND 56",
            name=op.f("ck_survey_responses_annees_depuis_la_derniere_promotion"),
        ),
        sa.CheckConstraint(
            "annees_sous_responsable_actuel BETWEEN 0 AND 56",
            name=op.f("ck_survey_responses_annees_sous_responsable_actuel"),
        ),
        sa.CheckConstraint(
            "distance_domicile_travail BETWEEN 0 AND 200",
            name=op.f("ck_survey_responses_distance_domicile_travail"),
        ),
        sa.CheckConstraint(
            "nb_formations_suivies BETWEEN 0 AND 20",
            name=op.f("ck_survey_responses_nb_formations_suivies"),
        ),
        sa.CheckConstraint(
            "niveau_education BETWEEN 1 AND 5", name=op.f("ck_survey_responses_niveau_education")
        ),
        sa.CheckConstraint(
            "nombre_employes_sous_responsabilite >= 0",
            name=op.f("ck_survey_responses_sous_responsabilite"),
        ),
        sa.CheckConstraint(
            "nombre_participation_pee BETWEEN 0 AND 3",
            name=op.f("ck_survey_responses_nombre_participation_pee"),
        ),
        sa.ForeignKeyConstraint(
            ["id_employee"],
            ["employees.id_employee"],
            name=op.f("fk_survey_responses_id_employee_employees"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_employee", name=op.f("pk_survey_responses")),
        sa.UniqueConstraint("code_sondage", name=op.f("uq_survey_responses_code_sondage")),
    )


def create_employee_features() -> None:
    """The view the model reads: one row per employee, every input."""
    op.execute(EMPLOYEE_FEATURES_VIEW)
