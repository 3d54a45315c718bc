"""The recalibration map: fitted on known rates, strictly increasing, kept by a fixed rule."""

from __future__ import annotations

import numpy as np
import pytest

from attrition.model.calibration import (
    METHOD,
    NONE,
    Calibration,
    fit_calibration,
    keep_calibration,
)


def test_fit_recovers_known_rates() -> None:
    # Scores 0.2 come true 30 % of the time and scores 0.7, 60 %: the map sends each score
    # to its observed rate (up to the small share of identity).
    probability = np.repeat([0.2, 0.7], 100)
    target = np.concatenate([np.repeat([1, 0], [30, 70]), np.repeat([1, 0], [60, 40])])
    calibration = fit_calibration(probability, target)
    assert calibration.apply(np.array([0.2, 0.7])) == pytest.approx([0.3, 0.6], abs=1e-3)


def test_map_is_strictly_increasing_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    probability = rng.random(500)
    target = (rng.random(500) < probability**2).astype(np.int64)
    calibration = fit_calibration(probability, target)
    grid = np.linspace(0, 1, 1001)
    assert (np.diff(calibration.apply(grid)) > 0).all()
    rebuilt = Calibration.from_state(calibration.to_state())
    assert np.array_equal(rebuilt.apply(grid), calibration.apply(grid))
    with pytest.raises(ValueError, match="inconsistent"):
        Calibration.from_state({**calibration.to_state(), "knots_y": [0.5] * 2, "knots_x": [0, 1]})


def test_rule_keeps_only_a_gain_beyond_its_standard_error() -> None:
    kept = keep_calibration([0.083, 0.084, 0.082], [0.080, 0.081, 0.0795])
    assert kept["kept"] and kept["method"] == METHOD and kept["folds_improved"] == 3
    noisy = keep_calibration([0.083, 0.080, 0.082], [0.080, 0.083, 0.0819])
    assert not noisy["kept"] and noisy["method"] == NONE
    assert noisy["gain"] == pytest.approx(0.0001 / 3)
