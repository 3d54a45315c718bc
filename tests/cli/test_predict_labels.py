"""`attrition predict` words its factors as the web result page does (label, value, effect)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from attrition.cli import app
from attrition.config import PROJECT_ROOT

runner = CliRunner()


def _one_row_without_pee(tmp_path: Path) -> Path:
    lines = (PROJECT_ROOT / "examples" / "employees.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    values = lines[1].split(",")
    values[header.index("nombre_participation_pee")] = "0"
    path = tmp_path / "one.csv"
    path.write_text("\n".join([lines[0], ",".join(values)]) + "\n", encoding="utf-8")
    return path


def test_single_prediction_lists_plain_factors(
    cli_env: CliRunner, model_version: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["predict", "--file", str(_one_row_without_pee(tmp_path))])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # Rich wraps long lines
    assert "Aucune participation" not in text
    assert "Participe au PEE (plan d'épargne entreprise) : non" in text
    assert "augmente le risque" in text and "diminue le risque" in text
