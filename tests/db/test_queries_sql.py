"""Every example query of sql/queries.sql runs against the real schema and says something true.

Each test starts from an empty audit trail: inside the rolled-back transaction of ``conn``,
the append-only guard is lifted for that transaction only (as a purge would) and the rows
other tests may have committed are deleted; nothing of it survives the rollback.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Connection, text

from attrition.config import PROJECT_ROOT
from attrition.data.vocabulary import FEATURE_NAMES

QUERIES = PROJECT_ROOT / "sql" / "queries.sql"
VERSION = "sql-test"
# A "perfect" model: 0.8 for the employees who left, 0.1 for the others, threshold 0.5.
LEFT_P, STAYED_P = 0.8, 0.1


def load_queries() -> dict[str, str]:
    """``-- name: x`` blocks of the file, comment lines removed, one statement each."""
    content = QUERIES.read_text(encoding="utf-8")
    parts = re.split(r"^-- name: (\w+)\n", content, flags=re.MULTILINE)
    header, named = parts[0], parts[1:]
    assert all(line.startswith("--") or not line.strip() for line in header.splitlines()), (
        "SQL outside a named block"
    )
    queries = {}
    for name, body in zip(named[::2], named[1::2], strict=True):
        sql = "\n".join(line for line in body.splitlines() if not line.startswith("--")).strip()
        assert sql.endswith(";") and sql.count(";") == 1, f"{name}: one statement expected"
        assert name not in queries, f"duplicate name {name}"
        queries[name] = sql
    return queries


QUERY_NAMES = sorted(load_queries())


@pytest.fixture
def empty_trail(conn: Connection) -> Connection:
    conn.execute(text("SELECT set_config('attrition.allow_purge', 'on', true)"))
    conn.execute(text("DELETE FROM predictions"))
    conn.execute(text("DELETE FROM prediction_inputs"))
    conn.execute(text("DELETE FROM rejected_requests"))
    conn.execute(text("SELECT set_config('attrition.allow_purge', 'off', true)"))
    return conn


@pytest.fixture
def seeded(empty_trail: Connection) -> Connection:
    """One prediction per stored employee, one rejected request, one API key."""
    conn = empty_trail
    key_id = conn.scalar(
        text(
            "INSERT INTO api_keys (key_id, name, role, key_hash) "
            "VALUES ('sqltest1', 'test-sql', 'predicteur', decode(repeat('00', 32), 'hex')) "
            "RETURNING id"
        )
    )
    model_id = conn.scalar(
        text(
            "INSERT INTO model_versions (version, algorithm, hyper_parameters, features, metrics, "
            "threshold, threshold_criterion, data_fingerprint, code_version, library_versions, "
            "artifact, artifact_sha256) VALUES (:v, 'logistic_regression', '{}', '[]', '{}', "
            "0.5, 'f2', 'test', 'test', '{}', '\\x00', repeat('0', 64)) RETURNING id"
        ),
        {"v": VERSION},
    )
    features = ", ".join(FEATURE_NAMES)
    conn.execute(
        text(
            f"INSERT INTO prediction_inputs (request_id, api_key_id, source, id_employee, "
            f"{features}, payload) SELECT 'sql-test', :key, 'employee', id_employee, "
            f"{features}, jsonb_build_object('id_employee', id_employee) "
            "FROM employee_features ORDER BY id_employee"
        ),
        {"key": key_id},
    )
    conn.execute(
        text(
            "INSERT INTO predictions (input_id, model_version_id, probability, label, threshold, "
            "risk_level, explanation, latency_ms, record_mac) "
            "SELECT i.id, :model, CASE WHEN f.a_quitte_l_entreprise THEN :left ELSE :stayed END, "
            "CAST(CASE WHEN f.a_quitte_l_entreprise THEN 'depart' ELSE 'reste' END "
            "AS prediction_label), 0.5, "
            "CAST(CASE WHEN f.a_quitte_l_entreprise THEN 'eleve' ELSE 'faible' END "
            "AS risk_level), '{}', 0.2, repeat('0', 64) "
            "FROM prediction_inputs i JOIN employee_features f ON f.id_employee = i.id_employee"
        ),
        {"model": model_id, "left": LEFT_P, "stayed": STAYED_P},
    )
    conn.execute(
        text(
            "INSERT INTO rejected_requests (request_id, method, route, status, errors) VALUES "
            "('sql-test', 'POST', '/v1/predictions', 422, "
            '\'[{"champ": "age", "message": "doit être inférieur ou égal à 70"}]\')'
        )
    )
    return conn


def run(conn: Connection, name: str) -> list[dict[str, object]]:
    return [dict(row) for row in conn.execute(text(load_queries()[name])).mappings()]


def test_file_has_the_documented_queries() -> None:
    assert {
        "risque_par_departement",
        "dernieres_predictions",
        "predictions_par_version",
        "rejets_par_statut",
        "historique_d_un_employe",
    } <= set(QUERY_NAMES)


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_runs_on_an_empty_trail(empty_trail: Connection, name: str) -> None:
    rows = run(empty_trail, name)
    if name in {"risque_par_departement", "dernieres_predictions", "rejets_par_statut"}:
        assert rows == []


@pytest.mark.parametrize("name", QUERY_NAMES)
def test_query_runs_on_a_seeded_trail(seeded: Connection, name: str) -> None:
    rows = run(seeded, name)
    if name == "entrees_sans_sortie":
        assert rows == []
    elif name != "modele_actif":  # the seeded version is not activated
        assert rows, f"{name} returned nothing on a seeded trail"


def test_department_risk_matches_the_dataset(seeded: Connection) -> None:
    rows = run(seeded, "risque_par_departement")
    truth = {
        dep: (total, left)
        for dep, total, left in seeded.execute(
            text(
                "SELECT departement, count(*), count(*) FILTER (WHERE a_quitte_l_entreprise) "
                "FROM employee_features GROUP BY departement"
            )
        )
    }
    assert len(rows) == 3
    assert [r["departement"] for r in rows] == ["Commercial", "Consulting", "Ressources Humaines"]
    assert sum(int(r["employes_evalues"]) for r in rows) == 1470
    for row in rows:
        total, left = truth[row["departement"]]
        rate = left / total
        assert row["employes_evalues"] == total
        assert float(row["taux_depart_reel"]) == pytest.approx(rate, abs=5e-4)
        # The seeded model is right on every employee, so its share of "depart" is the truth.
        assert row["part_predite_depart"] == row["taux_depart_reel"]
        expected_mean = STAYED_P + (LEFT_P - STAYED_P) * rate
        assert float(row["probabilite_moyenne"]) == pytest.approx(expected_mean, abs=5e-4)


def test_department_risk_keeps_the_latest_prediction_per_employee(seeded: Connection) -> None:
    before = run(seeded, "risque_par_departement")
    seeded.execute(
        text(
            "WITH i AS (INSERT INTO prediction_inputs (request_id, source, id_employee, "
            f"{', '.join(FEATURE_NAMES)}, payload) SELECT 'again', 'api', id_employee, "
            f"{', '.join(FEATURE_NAMES)}, '{{}}' FROM employee_features WHERE id_employee = 1 "
            "RETURNING id) INSERT INTO predictions (input_id, model_version_id, probability, "
            "label, threshold, risk_level, explanation, latency_ms, record_mac) SELECT i.id, "
            "m.id, 0.99, 'depart', 0.5, 'eleve', '{}', 0.1, repeat('0', 64) "
            "FROM i, model_versions m WHERE m.version = :v"
        ),
        {"v": VERSION},
    )
    after = run(seeded, "risque_par_departement")
    assert [r["employes_evalues"] for r in after] == [r["employes_evalues"] for r in before]
    assert after != before  # employee 1 now counts with 0.99, not 0.8


def test_latest_predictions_and_versions(seeded: Connection) -> None:
    latest = run(seeded, "dernieres_predictions")
    assert len(latest) == 20
    ids = [r["prediction_id"] for r in latest]
    assert ids == sorted(ids, reverse=True)
    assert {r["client"] for r in latest} == {"sqltest1"}
    versions = {r["version"]: r for r in run(seeded, "predictions_par_version")}
    assert versions[VERSION]["predictions"] == 1470
    assert versions[VERSION]["departs_predits"] == 237


def test_rejections_and_access_request(seeded: Connection) -> None:
    rejected = run(seeded, "rejets_par_statut")
    assert [(r["status"], r["route"], r["rejets"]) for r in rejected] == [
        (422, "/v1/predictions", 1)
    ]
    fields = run(seeded, "champs_les_plus_souvent_invalides")
    assert [(r["champ"], r["occurrences"]) for r in fields] == [("age", 1)]
    history = run(seeded, "historique_d_un_employe")
    assert len(history) == 1
    assert history[0]["payload"] == {"id_employee": 1}
    confusion = run(seeded, "matrice_de_confusion_par_version")
    assert confusion == [
        {
            "version": VERSION,
            "vrais_positifs": 237,
            "faux_positifs": 0,
            "faux_negatifs": 0,
            "vrais_negatifs": 1233,
        }
    ]
