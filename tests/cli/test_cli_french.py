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
