"""The acceptance rule of new versions, on the metrics the registry stores."""

from __future__ import annotations

from typing import Any

from attrition.model import acceptance


def _metrics(
    pr_auc: float, low: float, slope: float, recalls: tuple[float, float] = (0.7, 0.75)
) -> dict[str, Any]:
    def row(group: str, recall: float) -> dict[str, Any]:
        return {"group": group, "recall": {"value": recall, "low": 0.0, "high": 1.0}}

    fairness = [row("F", recalls[0]), row("M", recalls[1])]
    honest = {
        "figures": {"pr_auc": {"value": pr_auc, "low": low, "high": pr_auc + 0.05}},
        "calibration": {"slope": slope, "intercept": 0.0},
        "fairness": {"genre": fairness, "age": fairness},
    }
    return {"selected": "m", "cv": {"candidates": {"m": {"honest": honest}}}}


def test_a_comparable_version_is_accepted() -> None:
    verdict = acceptance.check(_metrics(0.70, 0.65, 1.0), _metrics(0.71, 0.66, 1.05))
    assert verdict.accepted and verdict.refusals == []
    assert verdict.checks["active"]["pr_auc"]["low"] == 0.66


def test_pr_auc_below_the_active_interval_is_refused() -> None:
    verdict = acceptance.check(_metrics(0.64, 0.60, 1.0), _metrics(0.71, 0.66, 1.0))
    assert verdict.refusals == [
        "PR-AUC 0,640 inférieure à la borne basse 0,660 de l'intervalle à 95 % de la "
        "version active (0,710)"
    ]


def test_slope_out_of_range_is_refused_even_without_active_version() -> None:
    verdict = acceptance.check(_metrics(0.70, 0.65, 1.4), None)
    assert verdict.refusals == ["pente de calibration 1,400 hors de l'intervalle [0,800 ; 1,250]"]


def test_growing_fairness_gap_is_refused() -> None:
    verdict = acceptance.check(
        _metrics(0.70, 0.65, 1.0, (0.5, 0.8)), _metrics(0.70, 0.65, 1.0, (0.7, 0.75))
    )
    assert len(verdict.refusals) == 2
    assert verdict.refusals[0].startswith("écart de rappel par genre passé de 0,050 à 0,300")


def test_a_version_without_nested_figures_cannot_be_judged() -> None:
    verdict = acceptance.check({"cv": None, "selected": "m"}, None)
    assert not verdict.accepted
    assert "validation croisée imbriquée" in verdict.refusals[0]
