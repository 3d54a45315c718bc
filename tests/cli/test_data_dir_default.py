"""`attrition data check` finds the extracts beside the clone, as the Makefile does."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from attrition.cli import app
from attrition.config import PROJECT_ROOT, default_data_dir, get_settings
from attrition.data.vocabulary import EXTRACT_FILES


def _touch_extracts(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in EXTRACT_FILES.values():
        (folder / name).write_text("x\n", encoding="utf-8")


def test_default_is_data_raw_then_the_shared_folder_beside_the_clone(tmp_path: Path) -> None:
    root = tmp_path / "clone"
    root.mkdir()
    assert default_data_dir(root) == root / "data" / "raw"
    _touch_extracts(tmp_path / "shared" / "data" / "technova")
    assert default_data_dir(root) == tmp_path / "shared" / "data" / "technova"
    _touch_extracts(root / "data" / "raw")
    assert default_data_dir(root) == root / "data" / "raw"


@pytest.mark.skipif(
    not (PROJECT_ROOT.parent / "shared" / "data" / "technova").is_dir(),
    reason="pas de dossier ../shared/data/technova sur cette machine",
)
def test_data_check_works_outside_make(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATTRITION_DATA_DIR", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["data", "check"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "1470" in result.output.replace("\u202f", "").replace(" ", "")
