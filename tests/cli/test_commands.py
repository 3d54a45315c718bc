"""The command line against the test database (DATABASE_URL points at it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from attrition.cli import app
from attrition.config import PROJECT_ROOT
from attrition.db.engine import Database

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_help_lists_the_commands() -> None:
    out = run("--help")
    for command in ("serve", "train", "db", "model", "keys"):
        assert command in out


def test_db_url_and_load(cli_env: CliRunner) -> None:
    assert "postgresql+psycopg" in run("db", "url")
    out = run("db", "load")
    assert "1470" in out and "Aucun changement" in out


def test_db_create_is_idempotent(cli_env: CliRunner) -> None:
    assert "Base prête" in run("db", "create")


def test_data_check(cli_env: CliRunner, tmp_path: Path) -> None:
    assert "1470 employés valides, dont 237 départs" in run("data", "check")
    bad = runner.invoke(app, ["data", "check", "--data-dir", str(tmp_path)])
    assert bad.exit_code == 1
    assert "fichier introuvable" in bad.output


def test_schema_sql_is_up_to_date() -> None:
    result = runner.invoke(app, ["db", "schema-sql"])
    assert result.exit_code == 0
    committed = (PROJECT_ROOT / "sql" / "schema.sql").read_text()
    assert result.output == committed, "sql/schema.sql is stale: run `make schema`"


def test_keys_commands(cli_env: CliRunner, database: Database) -> None:
    out = run("keys", "create", "--name", "cli-test", "--role", "auditeur", "--expires-in", "90d")
    key_id = out.split("Clé ")[1].split(" ")[0]
    assert key_id in run("keys", "list")
    assert "révoquée" in run("keys", "revoke", key_id)
    with database.owner_engine().connect() as c:
        assert c.scalar(
            text("SELECT revoked_at IS NOT NULL FROM api_keys WHERE key_id = :k"), {"k": key_id}
        )
    bad = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "chef"])
    assert bad.exit_code == 1 and "Rôle inconnu" in bad.output
    missing = runner.invoke(app, ["keys", "revoke", "zzzzzzzz"])
    assert missing.exit_code == 1 and "inconnue" in missing.output


def test_keys_daily_quota(cli_env: CliRunner, database: Database) -> None:
    out = run(
        "keys", "create", "--name", "cli-quota", "--role", "predicteur", "--quota-jour", "500"
    )
    key_id = out.split("Clé ")[1].split(" ")[0]

    def stored() -> object:
        with database.owner_engine().connect() as c:
            return c.scalar(
                text("SELECT daily_quota FROM api_keys WHERE key_id = :k"), {"k": key_id}
            )

    assert stored() == 500
    assert "2000 prédictions par jour" in run("keys", "quota", key_id, "2000")
    assert stored() == 2000
    assert "quota par défaut" in run("keys", "quota", key_id, "--defaut")
    assert stored() is None
    assert runner.invoke(app, ["keys", "quota", key_id]).exit_code == 2
    assert runner.invoke(app, ["keys", "quota", key_id, "0"]).exit_code == 2
    missing = runner.invoke(app, ["keys", "quota", "zzzzzzzz", "10"])
    assert missing.exit_code == 1 and "inconnue" in missing.output


def test_model_commands(cli_env: CliRunner, model_version: str) -> None:
    listing = run("model", "list")
    assert model_version in listing
    shown = json.loads(run("model", "show", model_version))
    assert shown["version"] == model_version and len(shown["sha256"]) == 64
    assert "active" in run("model", "activate", model_version)
    unknown = runner.invoke(app, ["model", "activate", "v999"])
    assert unknown.exit_code == 1 and "inconnue" in unknown.output


def _version_with_slope(database: Database, slope: float) -> str:
    """A real fitted version whose stored nested figures carry the given calibration slope."""
    from attrition.model.final import fit_final
    from attrition.model.pipeline import frame_fingerprint, read_training_frame, register_trained

    frame = read_training_frame(database)
    trained = fit_final(frame, "regression_logistique", 19)
    interval = {"value": 0.70, "low": 0.65, "high": 0.75}
    trained.metrics["cv"] = {
        "candidates": {
            "regression_logistique": {
                "honest": {
                    "figures": {"pr_auc": interval},
                    "calibration": {"slope": slope, "intercept": 0.0},
                    "fairness": {},
                }
            }
        }
    }
    return register_trained(database, trained, frame_fingerprint(frame), activate=False)


def test_activate_applies_the_acceptance_rule(
    cli_env: CliRunner, database: Database, model_version: str
) -> None:
    from sqlalchemy.orm import Session

    from attrition.model import registry

    bad = _version_with_slope(database, 1.6)
    try:
        refused = runner.invoke(app, ["model", "activate", bad])
        assert refused.exit_code == 1, refused.output
        said = " ".join(refused.output.split())  # Rich wraps long lines
        assert "refusée" in said and "pente de calibration 1,600" in said
        assert "--force" in said
        with database.owner_engine().connect() as c:
            assert c.scalar(text("SELECT version FROM model_versions WHERE is_active")) != bad
        no_reason = runner.invoke(app, ["model", "activate", bad, "--force"])
        assert no_reason.exit_code == 1 and "--raison" in " ".join(no_reason.output.split())

        forced = run("model", "activate", bad, "--force", "--raison", "essai contrôlé")
        assert "forcée" in forced
        with database.owner_engine().connect() as c:
            row = c.execute(
                text(
                    "SELECT a.forced, a.reason, a.refusals FROM model_activations a "
                    "JOIN model_versions v ON v.id = a.model_version_id WHERE v.version = :v"
                ),
                {"v": bad},
            ).one()
            assert c.scalar(text("SELECT version FROM model_versions WHERE is_active")) == bad
        assert row.forced and row.reason == "essai contrôlé"
        assert row.refusals[0].startswith("pente de calibration 1,600")
        # Rolling back to a version already served is never blocked by the rule (here the
        # fixture's version has no nested figures: as a new version it would be refused).
        rolled = " ".join(run("model", "activate", model_version).split())
        assert "retour à une version déjà servie" in rolled
    finally:
        with Session(database.owner_engine()) as s, s.begin():
            registry.activate_version(s, model_version)


def test_evaluate_json_reports_calibration_and_intervals(cli_env: CliRunner) -> None:
    out = run(
        "model", "evaluate", "--seed", "3", "--repeats", "1", "--json",
        "--candidat", "regression_logistique",
    )  # fmt: skip
    result = json.loads(out)
    assert result["model"] == "regression_logistique" and result["repeats"] == 1
    calibration = result["calibration"]
    assert calibration["brier_raw"] > 0 and calibration["brier_calibrated"] > 0
    assert calibration["kept"] == (calibration["gain"] > calibration["standard_error"])
    assert result["brier"] == pytest.approx(
        calibration["brier_calibrated"] if calibration["kept"] else calibration["brier_raw"],
        abs=1e-6,
    )
    operating = result["operating"]
    for key in ("precision", "recall", "flagged_leavers_per_100"):
        assert operating[key]["low"] <= operating[key]["value"] <= operating[key]["high"]
    for key in ("roc_auc", "pr_auc", "brier"):
        interval = result["intervals"]["figures"][key]
        assert interval["low"] < interval["value"] < interval["high"]
    assert len(result["intervals"]["fairness"]["age"]) == 4


def test_outcomes_record_import_and_performance(
    cli_env: CliRunner, database: Database, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    with database.owner_engine().connect() as c:
        low, high = c.execute(
            text("SELECT min(id_employee), min(id_employee) + 1 FROM employees")
        ).one()
    past = (datetime.now(UTC).date() - timedelta(days=30)).isoformat()
    assert "enregistré" in run(
        "outcomes", "record", str(low), "--statut", "present", "--date", past
    )
    again = run("outcomes", "record", str(low), "--statut", "present", "--date", past)
    assert "déjà enregistré" in again
    bad = runner.invoke(app, ["outcomes", "record", str(low), "--statut", "x", "--date", past])
    assert bad.exit_code == 1 and "parti" in bad.output

    listing = tmp_path / "constats.csv"
    listing.write_text(f"id_employee,statut,date\n{high},parti,{past}\n{low},present,{past}\n")
    out = " ".join(run("outcomes", "import", str(listing)).split())
    assert "2 constat(s) lu(s) : 1 enregistré(s), 1 déjà présent(s)" in out
    broken = tmp_path / "casse.csv"
    broken.write_text(f"id_employee,statut,date\n{high},present,pas-une-date\n")
    refused = runner.invoke(app, ["outcomes", "import", str(broken)])
    assert refused.exit_code == 1 and "ligne 2" in refused.output
    sirh = tmp_path / "extrait_sirh.csv"
    sirh.write_text(f"id_employee,age\n{low},41\n")
    need_date = runner.invoke(app, ["outcomes", "import", str(sirh)])
    assert need_date.exit_code == 1 and "--date-extraction" in " ".join(need_date.output.split())
    imported = run("outcomes", "import", str(sirh), "--date-extraction", past)
    assert "1 constat(s) lu(s)" in " ".join(imported.split())
    with database.owner_engine().connect() as c:
        sources = c.execute(
            text(
                "SELECT source, statut FROM employee_outcomes WHERE id_employee IN (:a, :b) "
                "ORDER BY id"
            ),
            {"a": low, "b": high},
        ).all()
    assert [tuple(row) for row in sources] == [("cli", "present"), ("import", "parti")]

    report = json.loads(run("monitor", "performance", "--json"))
    assert report["horizon_jours"] == 365 and "réentraîner" in report["regle"]
    assert "Horizon 365 jours" in run("monitor", "performance")
