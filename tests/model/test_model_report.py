"""Report: PNG figures, fairness numbers, French model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from attrition.errors import ValidationError
from attrition.model.card import render_model_card
from attrition.model.report import (
    FIGURE_FILES,
    age_band,
    fairness_table,
    render_report,
)
from attrition.model.training import TrainedModel

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report_numbers(
    trained_model: TrainedModel,
    employee_frame: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, Any]]:
    out_dir = tmp_path_factory.mktemp("docs") / "img" / "modele"
    return out_dir, render_report(trained_model, employee_frame, out_dir)


def test_age_band() -> None:
    ages = np.array([18, 29, 30, 39, 40, 49, 50, 60])
    assert age_band(ages).tolist() == [
        "<30", "<30", "30-39", "30-39", "40-49", "40-49", "50+", "50+",
    ]  # fmt: skip


def test_fairness_table_by_hand() -> None:
    groups = np.array(["F", "F", "F", "M", "M"], dtype=object)
    target = np.array([1, 0, 1, 0, 0])
    flagged = np.array([True, True, False, False, False])
    rows = fairness_table(groups, target, flagged, ["F", "M", "X"])
    assert rows == [
        {
            "group": "F",
            "n": 3,
            "observed_rate": 2 / 3,
            "positive_rate": 2 / 3,
            "recall": 0.5,
            "precision": 0.5,
        },
        {
            "group": "M",
            "n": 2,
            "observed_rate": 0.0,
            "positive_rate": 0.0,
            "recall": None,
            "precision": None,
        },
    ]


def test_report_writes_every_figure(report_numbers: tuple[Path, dict[str, Any]]) -> None:
    out_dir, numbers = report_numbers
    for name in FIGURE_FILES.values():
        content = (out_dir / name).read_bytes()
        assert content.startswith(PNG_MAGIC) and len(content) > 5000, name
    assert numbers["figures"] == FIGURE_FILES
    json.dumps(numbers)


def test_report_numbers(
    trained_model: TrainedModel, report_numbers: tuple[Path, dict[str, Any]]
) -> None:
    _, numbers = report_numbers
    assert numbers["threshold"] == trained_model.threshold
    assert numbers["roc_auc"] == pytest.approx(trained_model.metrics["oof"]["roc_auc"])
    assert numbers["confusion"] == trained_model.metrics["oof"]["confusion"]
    assert sum(row["n"] for row in numbers["fairness"]["genre"]) == 1470
    assert [row["group"] for row in numbers["fairness"]["age"]] == ["<30", "30-39", "40-49", "50+"]
    assert sum(row["n"] for row in numbers["fairness"]["age"]) == 1470
    values = [row["value"] for row in numbers["importance"]]
    assert values == sorted(values, reverse=True) and len(values) == len(trained_model.features)
    assert len(numbers["calibration"]) >= 5


def test_report_refuses_another_frame(
    trained_model: TrainedModel, employee_frame: pd.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError):
        render_report(trained_model, employee_frame.iloc[:100], tmp_path)


def test_model_card(
    trained_model: TrainedModel, report_numbers: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, numbers = report_numbers
    metadata = {**trained_model.metadata(), "version": "2026-01-01-7", "trained_at": "2026-01-01"}
    out_path = tmp_path / "docs" / "modele.md"
    text = render_model_card(metadata, numbers, out_path)
    assert out_path.read_text(encoding="utf-8") == text
    for heading in (
        "## Données et cible",
        "## Variables",
        "## Candidats comparés",
        "## Modèle retenu et seuil",
        "## Figures",
        "## Équité",
        "## Usage prévu et limites",
        "## Origine et ancienneté des données",
        "## Protocole de réentraînement",
    ):
        assert heading in text
    for name in FIGURE_FILES.values():
        assert f"](img/modele/{name})" in text
    assert "article 22" in text
    for command in (
        "attrition train",
        "attrition model evaluate --seed 7 --repeats 5 --json",
        "attrition model activate VERSION",
        "attrition model report",
    ):
        assert f"`{command}`" in text
    assert "2026-01-01-7" in text
    assert "| F | 588 |" in text
