"""Bootstrap intervals: weighted figures equal scikit-learn's, intervals cover the value."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from attrition.model.uncertainty import (
    FIGURES,
    bootstrap_intervals,
    recall_gap,
    stratified_weights,
    weighted_figures,
)


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    target = (rng.random(600) < 0.2).astype(np.int64)
    # Rounded scores, so that ties exist and must be counted like scikit-learn does.
    probability = np.round(np.clip(0.2 + 0.3 * (target - 0.2) + rng.normal(0, 0.15, 600), 0, 1), 2)
    return target, probability


def test_unit_weights_give_sklearn_figures(scored: tuple[np.ndarray, np.ndarray]) -> None:
    target, probability = scored
    flagged = probability >= 0.3
    figures = weighted_figures(target, probability, flagged, np.ones((1, len(target))))
    assert figures["roc_auc"][0] == pytest.approx(roc_auc_score(target, probability), abs=1e-12)
    assert figures["pr_auc"][0] == pytest.approx(
        average_precision_score(target, probability), abs=1e-12
    )
    assert figures["brier"][0] == pytest.approx(brier_score_loss(target, probability), abs=1e-12)
    tp = int((flagged & (target == 1)).sum())
    assert figures["precision"][0] == pytest.approx(tp / flagged.sum())
    assert figures["recall"][0] == pytest.approx(tp / target.sum())
    assert figures["flagged_leavers_per_100"][0] == pytest.approx(100 * tp / flagged.sum())
    assert figures["calibration_in_the_large"][0] == pytest.approx(
        probability.mean() - target.mean()
    )


def test_integer_weights_equal_repeated_rows(scored: tuple[np.ndarray, np.ndarray]) -> None:
    target, probability = scored
    weights = stratified_weights(target, 3, seed=1)
    assert (weights[:, target == 1].sum(axis=1) == target.sum()).all()
    assert (weights.sum(axis=1) == len(target)).all()
    figures = weighted_figures(target, probability, probability >= 0.3, weights)
    for row, w in enumerate(weights.astype(int)):
        rows = np.repeat(np.arange(len(target)), w)
        assert figures["roc_auc"][row] == pytest.approx(
            roc_auc_score(target[rows], probability[rows]), abs=1e-12
        )
        assert figures["pr_auc"][row] == pytest.approx(
            average_precision_score(target[rows], probability[rows]), abs=1e-12
        )


def test_intervals_cover_the_value_and_fairness_rows(
    scored: tuple[np.ndarray, np.ndarray],
) -> None:
    target, probability = scored
    groups = np.where(np.arange(len(target)) % 3 == 0, "A", "B").astype(object)
    result = bootstrap_intervals(
        target,
        np.vstack([probability, probability]),
        np.vstack([probability >= 0.3, probability >= 0.35]),
        groups={"lettre": (groups, ["A", "B", "C"])},
        n_resamples=200,
        seed=5,
    )
    assert set(result["figures"]) == set(FIGURES)
    for name, interval in result["figures"].items():
        if name == "ece":
            assert interval["low"] is None and interval["value"] > 0
            continue
        assert interval["low"] <= interval["value"] <= interval["high"], name
        assert interval["low"] < interval["high"], name
    rows = result["fairness"]["lettre"]
    assert [row["group"] for row in rows] == ["A", "B"]
    assert rows[0]["n"] == 200 and rows[0]["n_leavers"] == int(target[::3].sum())
    assert rows[0]["recall"]["low"] < rows[0]["recall"]["value"] < rows[0]["recall"]["high"]
    assert recall_gap(rows) == pytest.approx(
        abs(rows[0]["recall"]["value"] - rows[1]["recall"]["value"])
    )
