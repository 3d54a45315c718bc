"""The decision threshold (F2 on out-of-fold predictions) and the scores at a threshold."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

from attrition.model.summary import F_BETA

FloatArray = NDArray[np.float64]


def best_threshold(
    target: NDArray[np.int64], probability: FloatArray, beta: float = F_BETA
) -> float:
    """The probability threshold that maximises the F-beta score on these predictions.

    An employee is flagged when ``probability >= threshold``. Among equal scores the lowest
    threshold wins (the first maximum of the precision-recall curve).

    Parameters
    ----------
    target:
        0/1 outcomes.
    probability:
        Predicted probabilities of leaving, not used for training the model that made them.
    beta:
        Weight of recall relative to precision.
    """
    precision, recall, thresholds = precision_recall_curve(target, probability)
    # The curve's last point (recall 0, precision 1) has no threshold.
    precision, recall = precision[:-1], recall[:-1]
    denominator = beta**2 * precision + recall
    scores = np.divide(
        (1 + beta**2) * precision * recall,
        denominator,
        out=np.zeros_like(denominator),
        where=denominator > 0,
    )
    return float(thresholds[int(np.argmax(scores))])


def threshold_scores(
    target: NDArray[np.int64], probability: FloatArray, threshold: float
) -> dict[str, float]:
    """ROC-AUC, PR-AUC, and F1, recall, precision of the flags at ``threshold``; Brier score."""
    flagged = (probability >= threshold).astype(np.int64)
    precision = float(precision_score(target, flagged, zero_division=0.0))
    recall = float(recall_score(target, flagged, zero_division=0.0))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "roc_auc": float(roc_auc_score(target, probability)),
        "pr_auc": float(average_precision_score(target, probability)),
        "f1": f1,
        "recall": recall,
        "precision": precision,
        "brier": float(brier_score_loss(target, probability)),
        "threshold": threshold,
    }
