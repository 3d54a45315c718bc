"""Loading the validated extracts into PostgreSQL: COPY into staging tables, then upsert.

All three tables change in the caller's single transaction, or none does. Rows are copied
into temporary tables with PostgreSQL ``COPY`` (fast, one round trip per table), then merged
with ``INSERT ... ON CONFLICT DO UPDATE ... WHERE ... IS DISTINCT FROM``: re-running the load
with the same files writes nothing, and a corrected file updates only what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from attrition.data.extracts import Extracts

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "employees": (
        "id_employee",
        "age",
        "genre",
        "revenu_mensuel",
        "statut_marital",
        "departement",
        "poste",
        "nombre_experiences_precedentes",
        "nombre_heures_travaillees",
        "annees_experience_totale",
        "annees_dans_l_entreprise",
        "annees_dans_le_poste_actuel",
    ),
    "performance_reviews": (
        "id_employee",
        "eval_number",
        "satisfaction_employee_environnement",
        "note_evaluation_precedente",
        "niveau_hierarchique_poste",
        "satisfaction_employee_nature_travail",
        "satisfaction_employee_equipe",
        "satisfaction_employee_equilibre_pro_perso",
        "note_evaluation_actuelle",
        "heures_supplementaires",
        "augmentation_salaire_precedente",
    ),
    "survey_responses": (
        "id_employee",
        "code_sondage",
        "a_quitte_l_entreprise",
        "nombre_participation_pee",
        "nb_formations_suivies",
        "nombre_employes_sous_responsabilite",
        "distance_domicile_travail",
        "niveau_education",
        "domaine_etude",
        "ayant_enfants",
        "frequence_deplacement",
        "annees_depuis_la_derniere_promotion",
        "annees_sous_responsable_actuel",
    ),
}


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a load did, per table: rows written (inserted or updated) and rows in the table."""

    written: dict[str, int]
    totals: dict[str, int]

    @property
    def changed(self) -> bool:
        return any(self.written.values())


def load_extracts(conn: Connection, extracts: Extracts) -> LoadReport:
    """Write ``extracts`` through ``conn``; the caller owns the transaction (all or nothing)."""
    rows: dict[str, list[dict[str, Any]]] = {
        "employees": extracts.employees,
        "performance_reviews": extracts.reviews,
        "survey_responses": extracts.surveys,
    }
    written: dict[str, int] = {}
    raw = conn.connection.driver_connection
    assert raw is not None
    for table, columns in TABLE_COLUMNS.items():
        stage = f"stage_{table}"
        conn.execute(
            text(f"CREATE TEMP TABLE {stage} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
        )
        cols = ", ".join(columns)
        with raw.cursor() as cur, cur.copy(f"COPY {stage} ({cols}) FROM STDIN") as copy:
            for row in rows[table]:
                copy.write_row([row[c] for c in columns])
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
        target = ", ".join(f"{table}.{c}" for c in columns[1:])
        source = ", ".join(f"excluded.{c}" for c in columns[1:])
        result = conn.execute(
            text(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "  # noqa: S608
                f"ON CONFLICT (id_employee) DO UPDATE SET {updates} "
                f"WHERE ({target}) IS DISTINCT FROM ({source})"
            )
        )
        written[table] = result.rowcount
    totals = {
        table: int(conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608
        for table in TABLE_COLUMNS
    }
    return LoadReport(written=written, totals=totals)


def dataset_counts(conn: Connection) -> dict[str, int]:
    """Rows in each dataset table (0 when empty)."""
    return {
        table: int(conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608
        for table in TABLE_COLUMNS
    }
