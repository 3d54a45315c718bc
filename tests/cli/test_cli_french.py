"""Every `--help` and usage error of the CLI is in French (Typer's own words included)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from attrition.cli import app

runner = CliRunner()
ENGLISH = (
    "Show this message",
    "Usage:",
    "Commands",
    "Install completion",
    "[default:",
    "[required]",
    "No such option",
    "Missing option",
    "Try '",
    "Invalid value for",
    "Error",
    "Input should be",
)


def command_paths(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for info in group.registered_commands:
        name = info.name or (info.callback.__name__ if info.callback else "")
        paths.append((*prefix, name))
    for sub in group.registered_groups:
        assert sub.typer_instance is not None and sub.name
        paths += command_paths(sub.typer_instance, (*prefix, sub.name))
    return paths


@pytest.mark.parametrize("path", command_paths(app), ids=lambda p: " ".join(p) or "attrition")
def test_help_is_french(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Affiche cette aide et quitte." in result.output
    found = [word for word in ENGLISH if word in result.output]
    assert not found, (path, found)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["predict", "--bad"], "Option inconnue : --bad"),
        (["keys", "create"], "Option obligatoire manquante"),
        (["predictions", "list", "--limit", "x"], "un nombre entier est attendu"),
    ],
)
def test_usage_errors_are_french(args: list[str], expected: str, **_: Any) -> None:
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert expected in result.output
    assert not [word for word in ENGLISH if word in result.output], result.output


#: Click's and Typer's own English words, as they show in help and usage errors.
PLACEHOLDERS = (
    "COMMAND ",
    "[ARGS]",
    "Usage:",
    "Error:",
    "Try ",
    "for help",
    "Missing argument",
    "Missing option",
    "Missing command",
    "No such",
    "Got unexpected",
    "argument(s)",
    "requires an argument",
    "does not take a value",
    "is not a valid",
    "is not one of",
    "Did you mean",
    "Possible options",
    "Aborted",
    "<int",
    "<str>",
    "<bool>",
    "<float>",
    "<path>",
    " range>",
    "[default",
    "[required]",
    "[env var",
)


def english_in(output: str) -> list[str]:
    return [word for word in (*ENGLISH, *PLACEHOLDERS) if word in output]


@pytest.mark.parametrize("path", command_paths(app), ids=lambda p: " ".join(p) or "attrition")
def test_help_has_no_english_placeholder(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.output.strip().startswith("Usage :"), result.output
    assert not english_in(result.output), (path, english_in(result.output))


@pytest.mark.parametrize("path", command_paths(app), ids=lambda p: " ".join(p) or "attrition")
@pytest.mark.parametrize(
    "extra", [["--option-inconnue"], ["argument-en-trop", "encore-un"]], ids=["option", "extra"]
)
def test_every_usage_error_is_french(path: tuple[str, ...], extra: list[str]) -> None:
    result = runner.invoke(app, [*path, *extra], env={"COLUMNS": "200"}, prog_name="attrition")
    assert result.exit_code == 2, result.output
    assert "Erreur" in result.output
    assert "Voir « attrition" in result.output
    assert not english_in(result.output), (path, english_in(result.output))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model", "show"], "Argument obligatoire manquant : 'version'"),
        (["predict", "1", "2"], "Arguments en trop : 1 2"),
        (["predict", "--employee-id"], "L'option « --employee-id » demande une valeur."),
        (["predict", "--json=oui"], "L'option « --json » ne prend pas de valeur."),
        (["modele"], "Commande inconnue 'modele'. Vouliez-vous dire 'model' ?"),
    ],
)
def test_named_usage_errors_are_french(args: list[str], expected: str) -> None:
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert expected in result.output, result.output
    assert not english_in(result.output), english_in(result.output)
