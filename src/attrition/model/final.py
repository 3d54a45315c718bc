"""The final fit of the chosen recipe: pipeline, recalibration map and threshold.

:func:`fit_final` fits what :func:`attrition.model.training.evaluate` chose on all the data;
:class:`TrainedModel` is what the registry, the model card and the API need about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from numpy.typing import NDArray
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from attrition.data import vocabulary as voc
from attrition.errors import ValidationError
from attrition.model import calibration as cal
from attrition.model import features as feat
from attrition.model.candidates import CANDIDATES, make_pipeline
from attrition.model.thresholds import best_threshold
from attrition.model.thresholds import threshold_scores as _scores
from attrition.model.training import (
    THRESHOLD_CRITERION,
    EvaluationReport,
    _json_ready,
    calibration_check,
    design,
)
from attrition.wording import risk_bands

FloatArray = NDArray[np.float64]


@dataclass
class TrainedModel:
    """The fitted final model and what the registry, the report and the API need about it.

    Attributes
    ----------
    pipeline:
        Fitted pipeline, preparation then classifier; raw inputs go through
        :func:`features.to_model_frame` (training) or :func:`features.engineer` (serving).
    algorithm:
        Key of :data:`CANDIDATES`.
    hyper_parameters:
        The classifier's fixed hyper-parameters (JSON-serialisable).
    features:
        Model inputs, in order (:data:`features.MODEL_FEATURES`).
    threshold:
        Flag an employee when the probability is at least this.
    threshold_criterion:
        How the threshold was chosen, in French.
    metrics:
        JSON-serialisable: ``cv`` (the :class:`EvaluationReport` of all candidates, or
        ``None``), ``selected``, ``oof`` (scores of the final recipe's out-of-fold predictions
        at the threshold, with the confusion matrix) and ``calibration``.
    oof_probabilities:
        Out-of-fold probability of each training employee (5 stratified folds), for figures.
    target:
        The 0/1 outcome of each training employee, aligned with ``oof_probabilities``.
    calibration:
        The recalibration map applied to the pipeline's probabilities, or ``None``.
    raw_probabilities:
        Out-of-fold probabilities before recalibration (same folds), for the figures.
    """

    pipeline: Pipeline
    algorithm: str
    hyper_parameters: dict[str, Any]
    features: list[str]
    threshold: float
    threshold_criterion: str
    metrics: dict[str, Any]
    oof_probabilities: FloatArray
    target: NDArray[np.int64]
    seed: int
    calibration: cal.Calibration | None = None
    raw_probabilities: FloatArray | None = None

    @property
    def calibrated(self) -> bool:
        """Whether the served probabilities go through a recalibration map."""
        return self.calibration is not None

    def predict_proba(self, inputs: pd.DataFrame) -> FloatArray:
        """Served probability of leaving of each row of a model frame (recalibrated if kept)."""
        raw = np.asarray(self.pipeline.predict_proba(inputs)[:, 1], dtype=np.float64)
        return raw if self.calibration is None else self.calibration.apply(raw)

    def metadata(self) -> dict[str, Any]:
        """JSON-serialisable description of the model (registry row, model card)."""
        return {
            "algorithm": self.algorithm,
            "algorithm_label": CANDIDATES[self.algorithm].label,
            "hyper_parameters": dict(self.hyper_parameters),
            "features": list(self.features),
            "numeric_features": list(feat.NUMERIC_FEATURES),
            "categorical_features": list(feat.CATEGORICAL_FEATURES),
            "raw_features": list(voc.FEATURE_NAMES),
            "excluded_features": list(feat.EXCLUDED_FROM_MODEL),
            "threshold": self.threshold,
            "threshold_criterion": self.threshold_criterion,
            "calibrated": self.calibrated,
            "calibration_map": None if self.calibration is None else self.calibration.to_state(),
            "seed": self.seed,
            "n_samples": len(self.target),
            "n_positive": int(self.target.sum()),
            "metrics": self.metrics,
            "sklearn_version": sklearn.__version__,
            "numpy_version": np.__version__,
        }


def fit_final(
    frame: pd.DataFrame,
    name: str,
    seed: int,
    *,
    report: EvaluationReport | None = None,
    calibration: str | None = None,
    n_splits: int = 5,
) -> TrainedModel:
    """Fit the chosen recipe on all the data, with its recalibration map and threshold.

    Whether to recalibrate is part of the recipe, decided before this fit: by the
    evaluation's rule (``report``, :func:`calibration.keep_calibration`), or given as
    ``calibration``; without either, the recipe's default, :data:`calibration.METHOD`.
    The map is fitted on out-of-fold predictions over the full data (``n_splits``
    stratified folds), and the threshold maximises F2 on those predictions once mapped:
    the same criterion as in :func:`evaluate`, never chosen on predictions of a model that
    saw the employee. The figures of the model card use *cross-fitted* probabilities (in
    each fold, the map is fitted on the inner out-of-fold predictions of the training part
    only), so that its reliability diagram is not the map's own fit.

    Parameters
    ----------
    frame:
        The ``employee_features`` rows, target included.
    name:
        Key of :data:`CANDIDATES`, usually ``select_best(report)``.
    seed:
        Seed of the folds and of the classifier.
    report:
        The evaluation that led to the choice, stored in ``metrics["cv"]``; its decision on
        recalibration for ``name`` wins over ``calibration``.
    calibration:
        :data:`calibration.METHOD` or :data:`calibration.NONE`.
    n_splits:
        Number of folds of the out-of-fold predictions.
    """
    decision: dict[str, Any] | None = None
    if report is not None and name in report.candidates:
        decision = report.candidates[name].calibration or None
    method = (decision or {}).get("method") or calibration or cal.METHOD
    if method not in (cal.METHOD, cal.NONE):
        raise ValidationError(
            f"Méthode de recalibration inconnue : « {method} » ({cal.METHOD} ou {cal.NONE})."
        )
    inputs, target = design(frame)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1):
        raw = cross_val_predict(
            make_pipeline(name, seed), inputs, target, cv=folds, method="predict_proba"
        )[:, 1]
        if method == cal.METHOD:
            fitted = cal.fit_calibration(raw, target)
            calibration_map: cal.Calibration | None = fitted
            served = fitted.apply(raw)
            oof = _cross_fitted(name, seed, inputs, target, folds, n_splits)
        else:
            calibration_map, served, oof = None, raw, raw
        threshold = best_threshold(target, served)
        pipeline = make_pipeline(name, seed).fit(inputs, target)

    flagged = (oof >= threshold).astype(np.int64)
    oof_scores: dict[str, Any] = _scores(target, oof, threshold)
    oof_scores["confusion"] = confusion_matrix(target, flagged, labels=[0, 1]).tolist()
    oof_scores["risk_bands"] = served_risk_bands(report, name, target, oof, threshold)
    checks = {
        **calibration_check(target, oof),
        "ece": expected_calibration_error(target, oof),
        "method": method,
        "decision": decision or {"method": method, "rule": "imposée sans évaluation"},
        "raw": {
            **calibration_check(target, raw),
            "ece": expected_calibration_error(target, raw),
        },
    }
    return TrainedModel(
        pipeline=pipeline,
        algorithm=name,
        hyper_parameters=dict(CANDIDATES[name].hyper_parameters),
        features=list(feat.MODEL_FEATURES),
        threshold=threshold,
        threshold_criterion=THRESHOLD_CRITERION,
        metrics=_json_ready(
            {
                "cv": None if report is None else report.to_dict(),
                "selected": name,
                "oof": oof_scores,
                "calibration": checks,
            }
        ),
        oof_probabilities=oof,
        target=target,
        seed=seed,
        calibration=calibration_map,
        raw_probabilities=raw,
    )


def served_risk_bands(
    report: EvaluationReport | None,
    name: str,
    target: NDArray[np.int64],
    fallback: FloatArray,
    threshold: float,
) -> dict[str, dict[str, int]]:
    """Employees and leavers per risk level at the served threshold (``metrics.oof.risk_bands``).

    The probabilities are the ones the recipe serves (recalibrated when its rule kept the
    map), each from a model that did not see the employee: the nested outer folds of
    ``report`` when it evaluated ``name`` on these employees (counts averaged over the
    repeats, so that ``n`` stays a number of employees), else ``fallback``, the
    cross-fitted out-of-fold probabilities of :func:`fit_final`.
    """
    result = report.candidates.get(name) if report is not None else None
    rows = None if result is None else np.atleast_2d(result.oof_probabilities)
    if rows is None or rows.shape[1] != len(target) or not np.isfinite(rows).all():
        # No nested evaluation of this recipe on these employees: the cross-fitted ones.
        return risk_bands(target, fallback, threshold)
    per_repeat = [risk_bands(target, row, threshold) for row in rows]
    return {
        level: {
            key: round(sum(bands[level][key] for bands in per_repeat) / len(per_repeat))
            for key in ("n", "partis")
        }
        for level in per_repeat[0]
    }


def _cross_fitted(
    name: str,
    seed: int,
    inputs: pd.DataFrame,
    target: NDArray[np.int64],
    folds: StratifiedKFold,
    n_splits: int,
) -> FloatArray:
    """Recalibrated out-of-fold probabilities, each map fitted without the employee's fold."""
    out = np.full(len(target), np.nan)
    inner = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for train, test in folds.split(inputs, target):
        x_train, y_train = inputs.iloc[train], target[train]
        inner_probability = cross_val_predict(
            make_pipeline(name, seed), x_train, y_train, cv=inner, method="predict_proba"
        )[:, 1]
        model = make_pipeline(name, seed).fit(x_train, y_train)
        raw = model.predict_proba(inputs.iloc[test])[:, 1]
        out[test] = cal.fit_calibration(inner_probability, y_train).apply(raw)
    return out


def expected_calibration_error(
    target: NDArray[np.int64], probability: FloatArray, n_bins: int = 10
) -> float:
    """Mean absolute gap between predicted and observed rate over quantile bins, weighted."""
    probability = np.asarray(probability, dtype=np.float64)
    edges = np.percentile(probability, np.linspace(0, 100, n_bins + 1))
    bins = np.searchsorted(edges[1:-1], probability, side="right")
    gaps = np.bincount(bins, weights=probability - target, minlength=n_bins)
    return float(np.abs(gaps).sum() / len(target))
