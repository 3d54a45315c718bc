"""The command line against the test database (DATABASE_URL points at it)."""

from __future__ import annotations

import json
from pathlib import Path

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
