"""Recalibration of the model's probabilities: a monotone map fitted on out-of-fold scores.

The map is a *centred* isotonic regression (Oron & Flournoy, 2017): the pool-adjacent-
violators fit of the outcome on the predicted probability, reduced to one knot per block (the
block's mean predicted probability and its observed rate) and interpolated linearly between
knots, anchored at (0, 0) and (1, 1). A small share of the identity (:data:`IDENTITY_SHARE`)
makes it strictly increasing, so the employees' order, hence ROC-AUC, PR-AUC, the flagged set
at a matching threshold and the factor contributions on the logit scale, are unchanged: only
the probability shown changes. Applying it is ``numpy.interp`` over a few dozen knots, so the
serving path needs no scikit-learn.

Whether to keep it is decided by :func:`keep_calibration`, a rule fixed before any evaluation
is looked at: keep the map when the mean per-fold gain in Brier score exceeds its standard
error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Name of the recalibration method (registry metadata, model card).
METHOD: Final = "isotonique_centree"
#: No recalibration.
NONE: Final = "aucune"
#: Weight of the identity mixed into the map, so that it is strictly increasing.
IDENTITY_SHARE: Final = 1e-3
STATE_FORMAT: Final = "attrition.calibration.v1"
RULE: Final = (
    "Recalibration (régression isotonique centrée, ajustée sur les prédictions hors-pli "
    "internes de chaque pli) conservée si le gain moyen de score de Brier sur les plis "
    "externes dépasse son erreur type ; sinon, probabilités brutes du modèle."
)


@dataclass(frozen=True)
class Calibration:
    """A strictly increasing piecewise-linear map from raw to calibrated probability.

    Attributes
    ----------
    knots_x, knots_y:
        Raw and calibrated probability at each knot, both strictly increasing, from (0, 0)
        to (1, 1).
    """

    knots_x: tuple[float, ...]
    knots_y: tuple[float, ...]
    method: str = METHOD

    @cached_property
    def _knots(self) -> tuple[FloatArray, FloatArray]:
        # The knots as arrays, made once: np.interp converted the two tuples on every call
        # (about 1.5 µs of a one-row prediction's few tens).
        return np.asarray(self.knots_x, dtype=np.float64), np.asarray(
            self.knots_y, dtype=np.float64
        )

    def apply(self, probability: FloatArray) -> FloatArray:
        """The calibrated probability of each raw probability."""
        return np.interp(np.asarray(probability, dtype=np.float64), *self._knots)

    def apply_one(self, probability: float) -> float:
        """:meth:`apply` of one probability: the same number, without the arrays."""
        return float(np.interp(probability, *self._knots))

    def to_state(self) -> dict[str, Any]:
        """JSON-ready form (floats survive a JSON round trip exactly)."""
        return {
            "format": STATE_FORMAT,
            "method": self.method,
            "knots_x": list(self.knots_x),
            "knots_y": list(self.knots_y),
        }

    @classmethod
    def from_optional_state(cls, state: Mapping[str, Any] | None) -> Calibration | None:
        """:meth:`from_state`, or ``None`` for a version served without recalibration."""
        return None if state is None else cls.from_state(state)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Calibration:
        """Rebuild from :meth:`to_state`, refusing a map that is not increasing on [0, 1]."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError("unknown calibration format")
        x = np.asarray(state["knots_x"], dtype=np.float64)
        y = np.asarray(state["knots_y"], dtype=np.float64)
        if not (
            x.ndim == 1
            and x.shape == y.shape
            and len(x) >= 2
            and x[0] == 0.0
            and x[-1] == 1.0
            and np.all(np.diff(x) > 0)
            and np.all(np.diff(y) > 0)
            and y[0] >= 0.0
            and y[-1] <= 1.0
        ):
            raise ValueError("inconsistent calibration state")
        return cls(tuple(x.tolist()), tuple(y.tolist()), str(state.get("method", METHOD)))


def fit_calibration(probability: FloatArray, target: NDArray[np.int64]) -> Calibration:
    """Fit the centred isotonic map on out-of-fold probabilities and their outcomes.

    Parameters
    ----------
    probability:
        Raw probabilities, each from a model that did not see the employee.
    target:
        0/1 outcomes.
    """
    from sklearn.isotonic import isotonic_regression

    probability = np.asarray(probability, dtype=np.float64)
    order = np.argsort(probability, kind="stable")
    x = probability[order]
    fitted = isotonic_regression(np.asarray(target, dtype=np.float64)[order])
    starts = np.r_[0, np.flatnonzero(np.diff(fitted) != 0) + 1]
    sizes = np.diff(np.r_[starts, len(x)])
    centre_x = np.add.reduceat(x, starts) / sizes
    centre_y = fitted[starts]
    inside = (centre_x > 0.0) & (centre_x < 1.0)
    knots_x = np.r_[0.0, centre_x[inside], 1.0]
    knots_y = np.r_[0.0, centre_y[inside], 1.0]
    # Blocks with the same centre (possible when scores tie) would break np.interp.
    keep = np.r_[True, np.diff(knots_x) > 0]
    knots_x, knots_y = knots_x[keep], knots_y[keep]
    knots_y = (1 - IDENTITY_SHARE) * knots_y + IDENTITY_SHARE * knots_x
    return Calibration(tuple(knots_x.tolist()), tuple(knots_y.tolist()))


def keep_calibration(
    brier_raw: Sequence[float], brier_calibrated: Sequence[float]
) -> dict[str, Any]:
    """The rule fixed in advance: keep the map if the mean Brier gain exceeds its standard error.

    Parameters
    ----------
    brier_raw, brier_calibrated:
        Brier score of each outer fold, without and with the map fitted inside that fold.

    Returns
    -------
    dict
        ``kept``, ``method`` (:data:`METHOD` or :data:`NONE`), ``gain`` (mean of raw minus
        calibrated), ``standard_error`` (ddof=1, over the folds), ``folds_improved``,
        ``n_folds``, ``brier_raw`` and ``brier_calibrated`` (means), and ``rule``.
    """
    raw = np.asarray(brier_raw, dtype=np.float64)
    calibrated = np.asarray(brier_calibrated, dtype=np.float64)
    gain = raw - calibrated
    error = float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else float("inf")
    kept = bool(gain.mean() > error)
    return {
        "kept": kept,
        "method": METHOD if kept else NONE,
        "gain": float(gain.mean()),
        "standard_error": error,
        "folds_improved": int((gain > 0).sum()),
        "n_folds": len(gain),
        "brier_raw": float(raw.mean()),
        "brier_calibrated": float(calibrated.mean()),
        "rule": RULE,
    }
