"""First run: the retained recipe only (fast); `attrition train --compare` runs the comparison."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from attrition.cli import app
from attrition.config import Settings, get_settings
from attrition.db.engine import Database
from attrition.model.candidates import CANDIDATES
from attrition.model.pipeline import RETAINED_RECIPE

runner = CliRunner()


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, database: Database, settings: Settings, model_version: str
) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", database.owner_url.render_as_string(hide_password=False))
    monkeypatch.setenv("ATTRITION_DB__APP_PASSWORD", "test-app-password-1234")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_retained_recipe_is_a_candidate() -> None:
    assert RETAINED_RECIPE in CANDIDATES


def test_train_without_compare_fits_the_retained_recipe_only(env: None, database: Database) -> None:
    result = runner.invoke(app, ["train", "--repeats", "1"])
    assert result.exit_code == 0, result.output
    assert "Comparaison" not in result.output
    with database.owner_engine().connect() as conn:
        cv = conn.execute(
            text("SELECT metrics -> 'cv' -> 'candidates' FROM model_versions ORDER BY id DESC")
        ).scalar()
    assert list(cv) == [RETAINED_RECIPE]


def test_train_help_offers_the_comparison() -> None:
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert "--compare" in result.output
