"""The honest evaluation of the candidate models (``candidates.py``), and the final fit.

Honest means that nothing learnt from the data sees the fold it is scored on: scaling,
one-hot encoding and the classifier sit in one scikit-learn pipeline refitted in every fold,
and the decision threshold of each outer fold is chosen on inner out-of-fold predictions of
that fold's training part only. Every random state derives from one seed and every estimator
runs on one job, so a seed reproduces the numbers exactly. Native thread pools (OpenMP of
the gradient boosting, BLAS) are limited to one thread too: on a small, shared machine
their threads fight over the cores and made the evaluation up to four times slower.

The threshold maximises F2 (recall weighted four times as much as precision): for the client
a departure that is not flagged costs more than an HR interview that proves unnecessary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
import sklearn
from numpy.typing import NDArray
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, confusion_matrix
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from attrition.data import vocabulary as voc
from attrition.errors import ValidationError
from attrition.model import features as feat
from attrition.model.candidates import CANDIDATES, make_pipeline
from attrition.model.thresholds import best_threshold
from attrition.model.thresholds import threshold_scores as _scores

FloatArray = NDArray[np.float64]
Progress = Callable[[str], None]

THRESHOLD_CRITERION: Final = (
    "Seuil qui maximise le score F2 (β = 2 : le rappel compte quatre fois plus que la "
    "précision, car un départ non détecté coûte plus qu'un entretien RH inutile), choisi "
    "sur des prédictions hors-pli des seules données d'entraînement."
)
#: Metrics reported per fold, in report order.
METRICS: Final[tuple[str, ...]] = (
    "roc_auc",
    "pr_auc",
    "f1",
    "recall",
    "precision",
    "brier",
    "threshold",
)
#: Calibration is accepted when the recalibration slope is in this range (1 is perfect)...
CALIBRATION_SLOPE_RANGE: Final = (0.8, 1.25)
#: ...and the mean predicted probability is this close to the observed attrition rate.
CALIBRATION_MEAN_TOLERANCE: Final = 0.02


def design(frame: pd.DataFrame) -> tuple[pd.DataFrame, NDArray[np.int64]]:
    """The model inputs and the 0/1 target of an ``employee_features`` frame."""
    if voc.TARGET not in frame.columns:
        raise ValidationError(f"Colonne cible manquante : « {voc.TARGET} ».")
    target = frame[voc.TARGET].to_numpy().astype(np.int64)
    return feat.to_model_frame(frame), target


@dataclass(frozen=True)
class CandidateResult:
    """Cross-validated results of one candidate.

    Attributes
    ----------
    folds:
        Metric name -> one value per outer fold (``n_splits * repeats`` values).
    oof_probabilities:
        Out-of-fold probability of every employee, one row per repeat.
    confusion:
        Confusion matrix ``[[TN, FP], [FN, TP]]`` of the out-of-fold predictions at each
        fold's own threshold, summed over the folds of a repeat (every employee counted
        once), then averaged over the repeats.
    """

    name: str
    label: str
    hyper_parameters: dict[str, Any]
    folds: dict[str, list[float]]
    oof_probabilities: FloatArray
    confusion: FloatArray

    def summary(self) -> dict[str, dict[str, float]]:
        """Mean and standard deviation (ddof=1, over the outer folds) of each metric."""
        return {
            metric: {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            }
            for metric, values in self.folds.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (without the out-of-fold probabilities)."""
        return {
            "name": self.name,
            "label": self.label,
            "hyper_parameters": dict(self.hyper_parameters),
            "summary": self.summary(),
            "folds": {metric: list(values) for metric, values in self.folds.items()},
            "confusion": self.confusion.tolist(),
        }


@dataclass(frozen=True)
class EvaluationReport:
    """Results of :func:`evaluate` for every candidate, with the protocol that produced them."""

    seed: int
    repeats: int
    n_splits: int
    inner_splits: int
    n_samples: int
    n_positive: int
    threshold_criterion: str
    candidates: dict[str, CandidateResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, with the candidate :func:`select_best` picks."""
        return {
            "protocol": {
                "cv": "RepeatedStratifiedKFold",
                "seed": self.seed,
                "repeats": self.repeats,
                "n_splits": self.n_splits,
                "inner_splits": self.inner_splits,
                "threshold_criterion": self.threshold_criterion,
                "confusion": "somme des plis d'une répétition, moyenne sur les répétitions",
            },
            "n_samples": self.n_samples,
            "n_positive": self.n_positive,
            "candidates": {name: result.to_dict() for name, result in self.candidates.items()},
            "selected": select_best(self),
        }


def evaluate(
    frame: pd.DataFrame,
    *,
    seed: int,
    repeats: int = 5,
    candidates: Iterable[str] | None = None,
    progress: Progress | None = None,
    n_splits: int = 5,
    inner_splits: int = 5,
) -> EvaluationReport:
    """Compare candidates under repeated stratified cross-validation.

    In each outer fold the candidate's pipeline is fitted on the training part; its decision
    threshold maximises F2 on inner out-of-fold predictions of that training part
    (``inner_splits`` stratified folds), then every metric is computed on the held-out part.

    Parameters
    ----------
    frame:
        The ``employee_features`` rows, target included.
    seed:
        Seed of the outer and inner splits and of the classifiers.
    repeats:
        Number of repeats of the outer ``n_splits``-fold split.
    candidates:
        Names of :data:`CANDIDATES` to evaluate; all of them by default.
    progress:
        Called with a short French message after each fold (CLI progress output).
    n_splits, inner_splits:
        Number of outer and inner folds.

    Returns
    -------
    EvaluationReport
        Per-fold ROC-AUC, PR-AUC (average precision), F1, recall, precision, Brier score and
        threshold, out-of-fold probabilities and confusion matrix, for each candidate.
    """
    names = list(CANDIDATES) if candidates is None else list(candidates)
    inputs, target = design(frame)
    outer = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=repeats, random_state=seed)
    splits = list(outer.split(inputs, target))
    inner = StratifiedKFold(n_splits=inner_splits, shuffle=True, random_state=seed)

    for name in names:
        make_pipeline(name, seed)  # fails early, in French, on an unknown name
    results: dict[str, CandidateResult] = {}
    with threadpool_limits(limits=1):
        for name in names:
            results[name] = _cross_validate(
                name, seed, inputs, target, splits, n_splits, inner, progress
            )
    return EvaluationReport(
        seed=seed,
        repeats=repeats,
        n_splits=n_splits,
        inner_splits=inner_splits,
        n_samples=len(target),
        n_positive=int(target.sum()),
        threshold_criterion=THRESHOLD_CRITERION,
        candidates=results,
    )


def _cross_validate(
    name: str,
    seed: int,
    inputs: pd.DataFrame,
    target: NDArray[np.int64],
    splits: list[tuple[NDArray[np.intp], NDArray[np.intp]]],
    n_splits: int,
    inner: StratifiedKFold,
    progress: Progress | None,
) -> CandidateResult:
    """One candidate through every outer fold of :func:`evaluate`."""
    candidate = CANDIDATES[name]
    repeats = len(splits) // n_splits
    folds: dict[str, list[float]] = {metric: [] for metric in METRICS}
    oof = np.full((repeats, len(target)), np.nan)
    confusion = np.zeros((repeats, 2, 2))
    for index, (train, test) in enumerate(splits):
        repeat = index // n_splits
        x_train, y_train = inputs.iloc[train], target[train]
        inner_probability = cross_val_predict(
            make_pipeline(name, seed), x_train, y_train, cv=inner, method="predict_proba"
        )[:, 1]
        threshold = best_threshold(y_train, inner_probability)
        model = make_pipeline(name, seed).fit(x_train, y_train)
        probability = model.predict_proba(inputs.iloc[test])[:, 1]
        oof[repeat, test] = probability
        for metric, value in _scores(target[test], probability, threshold).items():
            folds[metric].append(value)
        confusion[repeat] += confusion_matrix(
            target[test], (probability >= threshold).astype(np.int64), labels=[0, 1]
        )
        if progress is not None:
            progress(f"{candidate.label} : pli {index + 1}/{len(splits)}")
    return CandidateResult(
        name=name,
        label=candidate.label,
        hyper_parameters=dict(candidate.hyper_parameters),
        folds=folds,
        oof_probabilities=oof,
        confusion=confusion.mean(axis=0),
    )


def select_best(report: EvaluationReport) -> str:
    """The candidate with the best mean PR-AUC.

    PR-AUC first because only 16 % of employees leave and the client acts on the flagged
    ones: precision at useful recall matters more than the ranking of the many who stay.
    Means are compared at three decimals (differences below 0.001 are noise at 25 folds);
    ties go to the better mean ROC-AUC, then to the simpler candidate (the earlier one in
    :data:`CANDIDATES`, the logistic regression first).

    Raises
    ------
    ValidationError
        If the report holds no candidate.
    """
    if not report.candidates:
        raise ValidationError("Le rapport d'évaluation ne contient aucun candidat.")
    order = {name: position for position, name in enumerate(CANDIDATES)}

    def key(name: str) -> tuple[float, float, int]:
        summary = report.candidates[name].summary()
        return (
            round(summary["pr_auc"]["mean"], 3),
            round(summary["roc_auc"]["mean"], 3),
            -order.get(name, len(order)),
        )

    return max(report.candidates, key=key)


def calibration_check(target: NDArray[np.int64], probability: FloatArray) -> dict[str, Any]:
    """How well out-of-fold probabilities match observed rates.

    The recalibration slope and intercept come from a logistic regression of the outcome on
    the predicted logit (slope 1 and intercept 0 when calibrated; a slope below 1 means
    over-confident probabilities).

    Returns
    -------
    dict
        ``brier``, ``slope``, ``intercept``, ``mean_predicted``, ``observed_rate`` and
        ``well_calibrated`` (slope within :data:`CALIBRATION_SLOPE_RANGE` and mean within
        :data:`CALIBRATION_MEAN_TOLERANCE` of the rate).
    """
    clipped = np.clip(probability, 1e-6, 1 - 1e-6)
    logit = np.log(clipped / (1 - clipped)).reshape(-1, 1)
    recalibration = LogisticRegression(C=math.inf).fit(logit, target)
    slope = float(recalibration.coef_[0, 0])
    mean_predicted = float(np.mean(probability))
    observed = float(np.mean(target))
    low, high = CALIBRATION_SLOPE_RANGE
    return {
        "brier": float(brier_score_loss(target, probability)),
        "slope": slope,
        "intercept": float(recalibration.intercept_[0]),
        "mean_predicted": mean_predicted,
        "observed_rate": observed,
        "well_calibrated": bool(
            low <= slope <= high and abs(mean_predicted - observed) <= CALIBRATION_MEAN_TOLERANCE
        ),
    }


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
    calibrated:
        Whether the classifier was wrapped in a sigmoid calibration.
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
    calibrated: bool = False

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
    n_splits: int = 5,
) -> TrainedModel:
    """Fit the chosen recipe on all the data, with its threshold and a calibration check.

    The threshold maximises F2 on out-of-fold predictions over the full data
    (``n_splits`` stratified folds): the same criterion as in :func:`evaluate`, never
    chosen on predictions of a model that saw the employee. If those predictions are not
    well calibrated (:func:`calibration_check`), the classifier is wrapped in a sigmoid
    calibration (fitted by internal cross-validation) and the check and threshold are
    redone; a logistic regression without class weights normally passes as it is, and stays
    a bare linear model that serving compiles to a dot product.

    Parameters
    ----------
    frame:
        The ``employee_features`` rows, target included.
    name:
        Key of :data:`CANDIDATES`, usually ``select_best(report)``.
    seed:
        Seed of the folds and of the classifier.
    report:
        The evaluation that led to the choice, stored in ``metrics["cv"]``.
    n_splits:
        Number of folds of the out-of-fold predictions.
    """
    inputs, target = design(frame)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1):
        pipeline = make_pipeline(name, seed)
        oof = cross_val_predict(pipeline, inputs, target, cv=folds, method="predict_proba")[:, 1]
        calibration = calibration_check(target, oof)
        calibrated = False
        if not calibration["well_calibrated"]:
            pipeline = _calibrated(name, seed, n_splits)
            oof = cross_val_predict(pipeline, inputs, target, cv=folds, method="predict_proba")[
                :, 1
            ]
            calibration = {"before": calibration, **calibration_check(target, oof)}
            calibrated = True
        threshold = best_threshold(target, oof)
        pipeline.fit(inputs, target)

    flagged = (oof >= threshold).astype(np.int64)
    oof_scores: dict[str, Any] = _scores(target, oof, threshold)
    oof_scores["confusion"] = confusion_matrix(target, flagged, labels=[0, 1]).tolist()
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
                "calibration": calibration,
            }
        ),
        oof_probabilities=oof,
        target=target,
        seed=seed,
        calibrated=calibrated,
    )


def _calibrated(name: str, seed: int, n_splits: int) -> Pipeline:
    """The candidate with its classifier inside a sigmoid calibration (still a Pipeline)."""
    pipeline = make_pipeline(name, seed)
    classifier = pipeline.named_steps["modele"]
    inner = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    calibrated = CalibratedClassifierCV(classifier, method="sigmoid", cv=inner)
    return Pipeline([("preparation", pipeline.named_steps["preparation"]), ("modele", calibrated)])


def _json_ready(value: Any) -> Any:
    """Numpy scalars and arrays as plain Python, so that ``json.dumps`` accepts the metrics."""
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value
