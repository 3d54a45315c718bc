"""One version number: pyproject.toml, the package, and the CHANGELOG's latest release agree."""

from __future__ import annotations

import re
import tomllib

from attrition import __version__
from attrition.config import PROJECT_ROOT


def test_package_version_is_pyproject_version() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert __version__ == pyproject["project"]["version"]


def test_changelog_latest_release_is_pyproject_version() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    changelog = (PROJECT_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, re.MULTILINE)
    assert releases, "CHANGELOG.md has no released section"
    assert releases[0] == pyproject["project"]["version"]
