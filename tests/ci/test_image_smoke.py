"""scripts/image_smoke.sh (`make image-smoke`): its skip path, and its figures in the docs.

The full run (image build and six containers) is `make image-smoke` itself, run by .ci/run
and by the `image` jobs of the workflows; here, what can be checked in a second.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "image_smoke.sh"


@pytest.fixture(scope="module")
def report() -> types.ModuleType:
    path = ROOT / "scripts" / "image_smoke_report.py"
    spec = importlib.util.spec_from_file_location("image_smoke_report_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def _without_engine(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run the script where the engine cannot start: a docker CLI that finds no daemon and a
    dockerd that dies at once (nothing is installed: both are "present")."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("docker", "exit 1"), ("dockerd", "echo 'no cgroups here' >&2; exit 1")):
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
        tool.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DOCKER": str(bin_dir / "docker"),
        "DOCKER_HOST": f"unix://{tmp_path}/none.sock",
        "WORK": str(tmp_path / "work"),
        "ATTRITION_IMAGE_REPORT": str(tmp_path / "report.json"),
        **extra,
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_engine_unavailable_is_a_loud_skip(tmp_path: Path) -> None:
    run = _without_engine(tmp_path)
    assert run.returncode == 0, run.stderr
    assert "SKIPPED: engine unavailable" in run.stdout.splitlines()
    assert "Moteur Docker indisponible" in run.stdout
    assert "no cgroups here" in run.stdout  # the daemon's own words are shown
    figures = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert figures["statut"] == "ignore_moteur_indisponible"


def test_engine_unavailable_fails_where_an_engine_is_required(tmp_path: Path) -> None:
    run = _without_engine(tmp_path, ATTRITION_REQUIRE_ENGINE="1")
    assert run.returncode == 1
    assert "SKIPPED: engine unavailable" in run.stdout


def test_docs_show_the_committed_measurements(report: types.ModuleType) -> None:
    figures = json.loads(report.COMMITTED.read_text(encoding="utf-8"))
    page = report.PAGE.read_text(encoding="utf-8")
    assert report.block(page) == report.render(figures), (
        "docs/deploiement.md is stale: run `make image-smoke` then "
        "`python scripts/image_smoke_report.py`"
    )


def test_committed_measurements_are_a_passing_run(report: types.ModuleType) -> None:
    figures = json.loads(report.COMMITTED.read_text(encoding="utf-8"))
    assert figures["statut"] == "reussi"
    for key, _label, _unit in report.ROWS:
        assert key in figures, key
    assert figures["arret_code"] == 0 and figures["arret_premier_demarrage_code"] == 0
    assert figures["recuperation_apres_crash"] == "non"
    assert figures["processus_cpus_1"] == 1
    assert figures["healthcheck"] == "healthy"
    for refusal in ("sans_stockage_code", "data_root_code", "externe_sans_mot_de_passe_code"):
        assert figures[refusal] == 1, refusal


def test_render_formats_french_numbers(report: types.ModuleType) -> None:
    text = report.render(
        {"statut": "reussi", "date": "d", "construction_s": 96.24, "arret_code": 0}
    )
    assert "| Construction de l'image | 96,2 s |" in text
    assert "| Code de sortie à l'arrêt | 0 |" in text
    assert "Taille" not in text  # a figure that was not measured is not shown


def test_the_first_start_stop_waits_for_a_line_the_service_prints() -> None:
    """Step 7 stops the container once training has begun, recognised by one line of the logs.

    When the start-up message changed, the step waited 300 s for a line that never came.
    """
    text = SCRIPT.read_text(encoding="utf-8")
    marks = [line.split("=", 1)[1].strip("'\"") for line in text.splitlines()
             if line.startswith("TRAINING_MARK=")]  # fmt: skip
    assert len(marks) == 1
    bootstrap = (ROOT / "src" / "attrition" / "bootstrap.py").read_text(encoding="utf-8")
    assert marks[0] in bootstrap
