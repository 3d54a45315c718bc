"""Display helpers for the metrics stored with a model version (no scikit-learn import)."""

from __future__ import annotations

from typing import Any, Final

#: Weight of recall relative to precision in the threshold criterion (F-beta). Here, not in
#: :mod:`~attrition.model.thresholds`, so that the web page can say what it means without
#: importing scikit-learn.
F_BETA: Final = 2.0

#: File name of each model-card figure under docs/img/modele/.
FIGURE_FILES: Final[dict[str, str]] = {
    "roc": "roc.png",
    "precision_recall": "precision_rappel.png",
    "calibration": "calibration.png",
    "confusion": "confusion.png",
    "importance": "importance.png",
    "fairness": "equite.png",
}


def summary_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The selected candidate's cross-validated means and stds, flattened for display."""
    cv = metrics.get("cv") or {}
    selected = metrics.get("selected")
    candidate = (cv.get("candidates") or {}).get(selected) or {}
    out: dict[str, Any] = {
        f"{name}_{stat}": values[stat]
        for name, values in (candidate.get("summary") or {}).items()
        for stat in ("mean", "std")
    }
    out["repetitions"] = (cv.get("protocol") or {}).get("repeats")
    return out
