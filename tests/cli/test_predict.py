"""`attrition predict` and `attrition predictions` go through the recorded path."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from attrition.cli import app
from attrition.config import PROJECT_ROOT
from attrition.db.engine import Database
from tests.api.test_minimal_inputs import stored_for_prediction

runner = CliRunner()


def test_predict_stored_employee_is_recorded(
    cli_env: CliRunner, model_version: str, database: Database
) -> None:
    result = runner.invoke(app, ["predict", "--employee-id", "1", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body[0]["id_employee"] == 1 and 0 <= body[0]["probabilite_depart"] <= 1
    with database.owner_engine().connect() as c:
        source, key, request_id = c.execute(
            text(
                "SELECT i.source, i.api_key_id, i.request_id FROM predictions p "
                "JOIN prediction_inputs i ON i.id = p.input_id WHERE p.id = :p"
            ),
            {"p": body[0]["prediction_id"]},
        ).one()
    assert (source, key) == ("employee", None) and request_id.startswith("cli-")
    # Data minimisation: the fields the model does not use are not copied from the record.
    assert stored_for_prediction(database, body[0]["prediction_id"])[:4] == (
        None,
        None,
        False,
        False,
    )


def test_predict_file(cli_env: CliRunner, model_version: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["predict", "--file", str(PROJECT_ROOT / "examples" / "employees.csv")]
    )
    assert result.exit_code == 0, result.output
    words = result.output.split()
    assert "Signalé" in result.output or "signalé" in result.output
    assert not {"depart", "reste", "eleve", "moyen", "faible"} & set(words)
    assert "seuil d'alerte" in result.output
    bad = tmp_path / "bad.csv"
    lines = (PROJECT_ROOT / "examples" / "employees.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    values = lines[1].split(",")
    values[header.index("age")] = "12"
    bad.write_text("\n".join([lines[0], ",".join(values)]) + "\n", encoding="utf-8")
    refused = runner.invoke(app, ["predict", "--file", str(bad)])
    assert refused.exit_code == 1
    assert "bad.csv, ligne 2 : age : doit être supérieur ou égal à 16" in refused.output


def test_predict_needs_exactly_one_source(cli_env: CliRunner, model_version: str) -> None:
    assert runner.invoke(app, ["predict"]).exit_code == 2


def test_list_and_export(cli_env: CliRunner, model_version: str) -> None:
    runner.invoke(app, ["predict", "--employee-id", "2"])
    listing = runner.invoke(app, ["predictions", "list", "--limit", "5"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0 and "employee" in listing.output
    assert not {"depart", "reste"} & set(listing.output.split())
    exported = runner.invoke(app, ["predictions", "export", "--format", "csv", "--limit", "3"])
    assert exported.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert len(rows) == 3 and rows[0]["poste"] and rows[0]["probabilite_depart"]
    as_json = runner.invoke(app, ["predictions", "export", "--format", "json", "--limit", "2"])
    assert len(json.loads(as_json.output)) == 2
    assert runner.invoke(app, ["predictions", "export", "--format", "xml"]).exit_code == 2
    assert runner.invoke(app, ["predictions", "list", "--since", "hier"]).exit_code == 2
