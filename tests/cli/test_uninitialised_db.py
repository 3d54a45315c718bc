"""A command run before the database is set up says so in French, without a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from attrition.cli import app
from attrition.config import get_settings
from attrition.db.engine import Database


@pytest.mark.parametrize(
    "args",
    [["predictions", "list"], ["model", "list"], ["keys", "list"], ["audit", "verify"]],
)
def test_command_on_empty_database_names_the_fix(
    cli_env: CliRunner, scratch: Database, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", scratch.owner_url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    result = cli_env.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "base de données n'est pas initialisée" in result.output
    assert "attrition db create" in result.output
    assert "Traceback" not in result.output
    assert "UndefinedTable" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
