"""The dataset in PostgreSQL: loading, idempotency, rollback, constraints, the features view."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy.exc
from sqlalchemy import Connection, text

from attrition.data.extracts import read_extracts
from attrition.db.engine import Database
from attrition.db.loading import TABLE_COLUMNS, dataset_counts, load_extracts
from attrition.errors import DataFileError


def test_tables_hold_every_employee(conn: Connection) -> None:
    assert dataset_counts(conn) == {
        "employees": 1470,
        "performance_reviews": 1470,
        "survey_responses": 1470,
    }


def test_features_view_has_one_row_per_employee_and_the_target(conn: Connection) -> None:
    total, left = conn.execute(
        text(
            "SELECT count(*), count(*) FILTER (WHERE a_quitte_l_entreprise) FROM employee_features"
        )
    ).one()
    assert (total, left) == (1470, 237)
    row = (
        conn.execute(text("SELECT * FROM employee_features WHERE id_employee = 1")).mappings().one()
    )
    assert row["age"] == 41
    assert row["poste"] == "Cadre Commercial"
    assert row["heures_supplementaires"] is True
    assert row["augmentation_salaire_precedente"] == 11.0
    assert row["annees_sous_responsable_actuel"] == 5


def test_load_twice_changes_nothing(conn: Connection, technova_dir: Path) -> None:
    report = load_extracts(conn, read_extracts(technova_dir))
    assert report.written == dict.fromkeys(TABLE_COLUMNS, 0)
    assert report.totals == dict.fromkeys(TABLE_COLUMNS, 1470)


def test_corrected_value_updates_only_that_row(
    conn: Connection, technova_dir: Path, tmp_path: Path
) -> None:
    for name in ("extrait_sirh.csv", "extrait_eval.csv", "extrait_sondage.csv"):
        shutil.copy(technova_dir / name, tmp_path / name)
    sirh = tmp_path / "extrait_sirh.csv"
    lines = sirh.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("1,41,F,5993", "1,41,F,6100", 1)
    sirh.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = load_extracts(conn, read_extracts(tmp_path))
    assert report.written == {"employees": 1, "performance_reviews": 0, "survey_responses": 0}
    income = conn.scalar(text("SELECT revenu_mensuel FROM employees WHERE id_employee = 1"))
    assert income == 6100


def test_bad_file_leaves_tables_untouched(
    database: Database, technova_dir: Path, tmp_path: Path
) -> None:
    for name in ("extrait_sirh.csv", "extrait_eval.csv", "extrait_sondage.csv"):
        shutil.copy(technova_dir / name, tmp_path / name)
    bad = tmp_path / "extrait_eval.csv"
    lines = bad.read_text(encoding="utf-8").splitlines()
    lines[12] = "x" + lines[12][1:]
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    engine = database.owner_engine()
    with engine.connect() as c:
        before = c.scalar(text("SELECT sum(revenu_mensuel) FROM employees"))
    with pytest.raises(DataFileError) as info, engine.begin() as c:
        load_extracts(c, read_extracts(tmp_path))
    assert info.value.file == "extrait_eval.csv"
    assert info.value.line == 13
    assert info.value.column == "satisfaction_employee_environnement"
    with engine.connect() as c:
        assert c.scalar(text("SELECT sum(revenu_mensuel) FROM employees")) == before
        assert dataset_counts(c)["employees"] == 1470


def test_failure_mid_transaction_rolls_back_every_table(
    database: Database, technova_dir: Path
) -> None:
    extracts = read_extracts(technova_dir)
    extracts.surveys[-1]["niveau_education"] = 9  # refused by PostgreSQL's CHECK, after two tables
    extracts.employees[0]["revenu_mensuel"] = 7777
    engine = database.owner_engine()
    with pytest.raises(sqlalchemy.exc.IntegrityError, match="ck_survey_responses_niveau_education"):
        with engine.begin() as c:
            load_extracts(c, extracts)
    with engine.connect() as c:
        assert c.scalar(text("SELECT revenu_mensuel FROM employees WHERE id_employee = 1")) == 5993


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("UPDATE employees SET age = 12 WHERE id_employee = 1", "ck_employees_age"),
        ("UPDATE employees SET genre = 'X' WHERE id_employee = 1", "invalid input value for enum"),
        (
            "UPDATE performance_reviews SET satisfaction_employee_equipe = 5 WHERE id_employee = 1",
            "ck_performance_reviews_satisfaction_employee_equipe",
        ),
        (
            "UPDATE employees SET annees_dans_l_entreprise = 30 WHERE id_employee = 1",
            "ck_employees_anciennete",
        ),
        (
            "UPDATE survey_responses SET frequence_deplacement = 'Souvent' WHERE id_employee = 1",
            "invalid input value for enum",
        ),
        (
            "UPDATE performance_reviews SET eval_number = 'E_2' WHERE id_employee = 1",
            "performance_reviews",
        ),
        (
            "INSERT INTO performance_reviews SELECT 99999, 'E_99999', 1,1,1,1,1,1,3,true,11",
            "fk_performance_reviews_id_employee_employees",
        ),
    ],
)
def test_postgresql_refuses_out_of_domain_values(
    conn: Connection, statement: str, constraint: str
) -> None:
    with pytest.raises(sqlalchemy.exc.DBAPIError, match=constraint), conn.begin_nested():
        conn.execute(text(statement))
