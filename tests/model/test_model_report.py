"""Report: PNG figures, fairness numbers, French model card."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from attrition.errors import ValidationError
from attrition.model.card import render_model_card
from attrition.model.final import TrainedModel, fit_final
from attrition.model.report import (
    FIGURE_FILES,
    age_band,
    calibration_bins,
    fairness_table,
    render_report,
)
from attrition.model.training import evaluate

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


def test_calibration_bins_on_a_known_case() -> None:
    # Two groups of 100 employees: every one of the first is given 0.2 and 30 % of them
    # leave; every one of the second is given 0.7 and 60 % leave. Predicted and observed
    # differ in each bin, so a transposed curve cannot pass.
    probability = np.repeat([0.2, 0.7], 100)
    target = np.concatenate([np.repeat([1, 0], [30, 70]), np.repeat([1, 0], [60, 40])]).astype(
        np.int64
    )
    bins = calibration_bins(target, probability, n_bins=2)
    assert [b["mean_predicted"] for b in bins] == pytest.approx([0.2, 0.7])
    assert [b["observed_rate"] for b in bins] == pytest.approx([0.3, 0.6])
    assert [b["n"] for b in bins] == [100, 100]


def test_report_calibration_is_not_transposed(
    trained_model: TrainedModel, report_numbers: tuple[Path, dict[str, Any]]
) -> None:
    # The model's own bins: the mean predicted probability of each bin is the mean of the
    # probabilities that fall in it (whatever the outcomes), which pins the axis.
    _, numbers = report_numbers
    probability = trained_model.oof_probabilities
    first = numbers["calibration"][0]
    lowest = np.sort(probability)[: first["n"]]
    assert first["mean_predicted"] == pytest.approx(float(lowest.mean()))
    assert sum(b["n"] for b in numbers["calibration"]) == len(probability)


def test_model_card_shows_calibration_and_nested_figures_with_intervals(
    employee_frame: pd.DataFrame, tmp_path: Path
) -> None:
    report = evaluate(employee_frame, seed=5, repeats=1, candidates=["regression_logistique"])
    trained = fit_final(employee_frame, "regression_logistique", 5, report=report)
    numbers = render_report(trained, employee_frame, tmp_path / "img" / "modele")
    assert sum(b["n"] for b in numbers["calibration"]) == 1470
    text = render_model_card(trained.metadata(), numbers, tmp_path / "modele.md")
    honest = report.candidates["regression_logistique"].honest
    per_100 = honest["figures"]["flagged_leavers_per_100"]
    assert "## Calibration" in text and "## Chiffres opérationnels" in text
    assert "| Probabilité prédite moyenne | Taux de départ observé | Effectif |" in text
    assert f"environ {round(per_100['value'])} partent (intervalle à 95 % :" in text
    assert "pente de calibration" in text and "ECE" in text
    assert "Départs |" in text  # fairness rows carry their leaver counts
    assert text.count(" [") >= 8 + 6 * 4  # figures and every fairness cell have intervals
    assert "**Règle d'acceptation**" in text and "--force" in text
    assert "**Seuils de réentraînement.** Avec au moins 100 prédictions résolues" in text


def test_model_card_opens_with_plain_french_and_counts_that_agree(
    employee_frame: pd.DataFrame, tmp_path: Path
) -> None:
    # What a fresh clone trains: the retained recipe, evaluated with one repetition.
    report = evaluate(employee_frame, seed=7, repeats=1, candidates=["regression_logistique"])
    trained = fit_final(employee_frame, "regression_logistique", 7, report=report)
    numbers = render_report(trained, employee_frame, tmp_path / "img" / "modele")
    text = render_model_card(trained.metadata(), numbers, tmp_path / "modele.md")
    brief = text.split("## En bref\n", 1)[1].split("\n## ", 1)[0]
    (_kept, false_alarms), (missed, caught) = trained.metadata()["metrics"]["oof"]["confusion"]
    assert "Méthode de calcul : régression logistique." in brief
    assert "un départ manqué compte 4 fois plus qu'une fausse alerte" in brief
    assert (
        f"Sur 100 départs réels, {round(100 * caught / (caught + missed))} sont signalés" in brief
    )
    assert (
        f"Sur 100 employés signalés, {round(100 * caught / (caught + false_alarms))} sont " in brief
    )
    for jargon in ("regression_logistique", "F2", "β", "logit", "hors-pli", "ROC"):
        assert jargon not in brief, jargon
    assert "5 plis × 1 répétition (graine 7)" in text and "1 répétitions" not in text
    assert "échelle logit" not in text
    for number, phrase in re.findall(r"\b(\d+) (plis?|répétitions?|fausses? alertes?)\b", text):
        assert all(w.endswith("s") == (int(number) > 1) for w in phrase.split()), phrase


def test_importance_figure_uses_plain_labels_and_words(
    report_numbers: tuple[Path, dict[str, Any]],
) -> None:
    from attrition.model.report import TOP_FEATURES, _importance_figure

    _, numbers = report_numbers
    labels = {row["feature"]: row["label"] for row in numbers["importance"]}
    assert labels["sans_participation_pee"] == "Participe au PEE (plan d'épargne entreprise)"
    axes = _importance_figure(numbers["importance"][:TOP_FEATURES]).axes[0]
    shown = [t.get_text() for t in axes.get_yticklabels()]
    assert "Aucune participation au PEE" not in shown
    assert "logit" not in axes.get_xlabel()
    assert axes.get_xlabel() == "Poids moyen dans le score, qu'il augmente ou diminue le risque"
