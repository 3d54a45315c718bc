"""Input drift: a shifted population is flagged, stored employees replayed are not."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from attrition.cli import app as cli_app
from attrition.cli.monitor import parse_since
from attrition.data.vocabulary import FEATURE_NAMES, FEATURES_BY_NAME
from attrition.db.engine import Database
from attrition.monitoring import drift as d
from tests.helpers import Keys, auth


@pytest.fixture(scope="module")
def employees(database: Database) -> list[dict[str, Any]]:
    with database.owner_engine().connect() as conn:
        rows = conn.execute(
            text(f"SELECT {', '.join(FEATURE_NAMES)} FROM employee_features ORDER BY id_employee")
        ).mappings()
        return [dict(row) for row in rows]


def shifted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Older (+15 years, within the accepted range) and all on overtime."""
    return [
        {**row, "age": min(row["age"] + 15, 70), "heures_supplementaires": True} for row in rows
    ]


def sample(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return random.Random(7).sample(rows, n)


def report(reference: list[dict[str, Any]], recent: list[dict[str, Any]]) -> d.DriftReport:
    return d.compute_drift(
        reference,
        recent,
        reference_positive_rate=0.2,
        recent_labels=["depart"] * (len(recent) // 5)
        + ["reste"] * (len(recent) - len(recent) // 5),
        observed_attrition_rate=237 / 1470,
    )


def by_name(result: d.DriftReport) -> dict[str, d.FeatureDrift]:
    return {f.variable: f for f in result.variables}


def test_psi_and_thresholds() -> None:
    assert d.psi_status(0.0) == "stable" and d.psi_status(0.0999) == "stable"
    assert d.psi_status(0.1) == "a_surveiller" and d.psi_status(0.2499) == "a_surveiller"
    assert d.psi_status(0.25) == "action_requise"
    import numpy as np

    same = np.array([0.5, 0.5])
    assert d.psi(same, same) == 0.0
    assert d.psi(np.array([1.0, 0.0]), np.array([0.0, 1.0])) > 10  # epsilon keeps it finite


def test_shifted_population_is_flagged(employees: list[dict[str, Any]]) -> None:
    result = report(employees, shifted(sample(employees, 400)))
    features = by_name(result)
    assert result.statut == "action_requise" and result.libelle_statut == "action requise"
    assert features["age"].psi >= d.ACTION and features["age"].statut == "action_requise"
    assert features["heures_supplementaires"].psi >= d.ACTION
    assert features["age"].hors_domaine > 0.1  # older than anyone in training
    assert result.variables[0].variable in {"age", "heures_supplementaires"}
    assert "Âge" in result.message and "docs/modele.md" in result.message
    assert features["departement"].statut == "stable"


def test_stored_employees_replayed_are_stable(employees: list[dict[str, Any]]) -> None:
    result = report(employees, sample(employees, 600))
    assert result.statut == "stable", [(f.variable, f.psi) for f in result.variables[:3]]
    assert all(f.psi < d.WATCH and f.hors_domaine == 0 for f in result.variables)
    assert result.taux_positifs.statut == "stable"
    assert "ressemblent" in result.message


def test_bins_unknown_categories_and_small_samples(employees: list[dict[str, Any]]) -> None:
    feature = d.feature_drift(FEATURES_BY_NAME["age"], [30, 40, 50], [35, 80], enough=True)
    assert feature.classes[0].libelle.startswith("≤") and feature.classes[-1].libelle[0] == ">"
    assert feature.hors_domaine == 0.5
    category = d.feature_drift(
        FEATURES_BY_NAME["departement"], ["Commercial"], ["Commercial", "Inconnu"], enough=True
    )
    assert category.classes[-1].libelle == "autre" and category.hors_domaine == 0.5
    empty = d.feature_drift(FEATURES_BY_NAME["genre"], ["F", "M"], [], enough=False)
    assert empty.psi == 0.0 and empty.statut == "donnees_insuffisantes"
    few = d.compute_drift(
        employees,
        employees[:5],
        reference_positive_rate=None,
        recent_labels=[],
        observed_attrition_rate=0.16,
    )
    assert few.statut == "donnees_insuffisantes" and "Trop peu" in few.message
    assert few.taux_positifs.psi is None and few.as_dict()["n_recent"] == 5


def test_moderate_drift_is_to_watch(employees: list[dict[str, Any]]) -> None:
    rows = sample(employees, 600)
    # One recent employee in four put on overtime: from about 28 % to 46 %, a moderate shift.
    moved = [{**r, "heures_supplementaires": True} if i % 4 == 0 else r for i, r in enumerate(rows)]
    result = report(employees, moved)
    feature = by_name(result)["heures_supplementaires"]
    assert feature.statut == "a_surveiller", feature.psi
    assert result.statut == "a_surveiller" and "À surveiller" in result.message


def post_batches(client: TestClient, key: str, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 1000):
        r = client.post(
            "/v1/predictions/batch",
            json={"employes": rows[start : start + 1000]},
            headers=auth(key),
        )
        assert r.status_code == 201, r.text


def db_now(database: Database) -> datetime:
    """The database clock: inputs received after this instant are this test's own."""
    with database.owner_engine().connect() as conn:
        return conn.execute(text("SELECT clock_timestamp()")).scalar_one()


def test_endpoint_flags_a_shifted_population(
    client: TestClient,
    keys: Keys,
    employees: list[dict[str, Any]],
    model_version: str,
    database: Database,
) -> None:
    started = db_now(database)
    post_batches(client, keys.predicteur, shifted(sample(employees, 400)))
    r = client.get(
        "/v1/monitoring/drift", params={"depuis": started.isoformat()}, headers=auth(keys.auditeur)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["statut"] == "action_requise" and body["n_recent"] == 400
    assert body["model_version"] == model_version and body["n_reference"] == 1470
    psi = {f["variable"]: f["psi"] for f in body["variables"]}
    assert psi["age"] >= 0.25 and psi["heures_supplementaires"] >= 0.25
    rate = body["taux_positifs"]
    assert 0 < rate["reference"] < 0.5 and rate["recent"] > rate["reference"]
    assert abs(rate["taux_depart_observe"] - 237 / 1470) < 1e-6

    replayed = db_now(database)
    post_batches(client, keys.predicteur, sample(employees, 600))
    r = client.get(
        "/v1/monitoring/drift",
        params={"depuis": replayed.isoformat(), "jusqu_a": "2999-01-01T00:00:00"},
        headers=auth(keys.admin),
    )
    body = r.json()
    assert body["n_recent"] == 600 and body["statut"] == "stable", body["message"]


def test_endpoint_roles_and_errors(client: TestClient, keys: Keys) -> None:
    assert client.get("/v1/monitoring/drift").status_code == 401
    r = client.get("/v1/monitoring/drift", headers=auth(keys.predicteur))
    assert r.status_code == 403 and "predicteur" in r.json()["detail"]
    r = client.get(
        "/v1/monitoring/drift",
        params={"depuis": "2026-01-02T00:00:00Z", "jusqu_a": "2026-01-01T00:00:00"},
        headers=auth(keys.auditeur),
    )
    assert r.status_code == 422 and "Période vide" in r.json()["detail"]
    default = client.get("/v1/monitoring/drift", headers=auth(keys.auditeur)).json()
    assert datetime.fromisoformat(default["depuis"]) < datetime.now(UTC) - timedelta(days=29)


def test_cli_drift(
    cli_env: CliRunner,
    client: TestClient,
    keys: Keys,
    employees: list[dict[str, Any]],
    model_version: str,
    database: Database,
) -> None:
    runner = cli_env
    started = db_now(database).isoformat()
    post_batches(client, keys.predicteur, shifted(sample(employees, 100)))
    result = runner.invoke(cli_app, ["monitor", "drift", "--since", started, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["statut"] == "action_requise" and body["n_recent"] == 100
    assert body["model_version"] == model_version
    result = runner.invoke(cli_app, ["monitor", "drift", "--since", started])
    assert result.exit_code == 0, result.output
    assert "Action requise" in result.output and "Âge" in result.output
    assert "Prédictions positives" in result.output
    bad = runner.invoke(cli_app, ["monitor", "drift", "--since", "hier"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output


def test_parse_since() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_since(None, now) == now - timedelta(days=30)
    assert parse_since("2026-01-31") == datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_since("2026-01-31T08:00:00+01:00").utcoffset() == timedelta(hours=1)
