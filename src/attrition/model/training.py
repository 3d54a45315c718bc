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
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, confusion_matrix
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from attrition.data import vocabulary as voc
from attrition.errors import ValidationError
from attrition.model import calibration as cal
from attrition.model import features as feat
from attrition.model.candidates import CANDIDATES, make_pipeline
from attrition.model.thresholds import best_threshold
from attrition.model.thresholds import threshold_scores as _scores
from attrition.model.uncertainty import bootstrap_intervals

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
#: Age bands of the fairness audit: label, lowest age, highest age (inclusive).
AGE_BANDS: Final[tuple[tuple[str, int, int], ...]] = (
    ("<30", 0, 29),
    ("30-39", 30, 39),
    ("40-49", 40, 49),
    ("50+", 50, 200),
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
    """Cross-validated results of one candidate, with or without recalibration as its rule chose.

    Attributes
    ----------
    folds:
        Metric name -> one value per outer fold (``n_splits * repeats`` values), of the
        probabilities the recipe would serve (recalibrated when :attr:`calibration` kept it).
    oof_probabilities:
        Out-of-fold probability of every employee, one row per repeat (same variant).
    confusion:
        Confusion matrix ``[[TN, FP], [FN, TP]]`` of the out-of-fold predictions at each
        fold's own threshold, summed over the folds of a repeat (every employee counted
        once), then averaged over the repeats.
    flagged:
        Whether each employee is flagged by its outer fold's model at that fold's threshold
        (chosen on inner folds), one row per repeat.
    calibration:
        :func:`calibration.keep_calibration` on the outer folds' Brier scores.
    honest:
        Pooled out-of-fold figures with 95 % intervals (:func:`uncertainty.bootstrap_intervals`)
        and calibration diagnostics, filled by :func:`evaluate`.
    """

    name: str
    label: str
    hyper_parameters: dict[str, Any]
    folds: dict[str, list[float]]
    oof_probabilities: FloatArray
    confusion: FloatArray
    flagged: NDArray[np.bool_] | None = None
    calibration: dict[str, Any] = field(default_factory=dict)
    honest: dict[str, Any] = field(default_factory=dict)

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
            "calibration": _json_ready(self.calibration),
            "honest": _json_ready(self.honest),
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
                "calibration_rule": cal.RULE,
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
    groups = fairness_groups(frame)
    with threadpool_limits(limits=1):
        for name in names:
            result = _cross_validate(name, seed, inputs, target, splits, n_splits, inner, progress)
            results[name] = replace(
                result, honest=honest_figures(target, result, groups=groups, seed=seed)
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
    variants = ("raw", "calibrated")
    folds: dict[str, dict[str, list[float]]] = {
        v: {metric: [] for metric in METRICS} for v in variants
    }
    oof = {v: np.full((repeats, len(target)), np.nan) for v in variants}
    flagged = {v: np.zeros((repeats, len(target)), dtype=bool) for v in variants}
    confusion = {v: np.zeros((repeats, 2, 2)) for v in variants}
    for index, (train, test) in enumerate(splits):
        repeat = index // n_splits
        x_train, y_train = inputs.iloc[train], target[train]
        inner_probability = cross_val_predict(
            make_pipeline(name, seed), x_train, y_train, cv=inner, method="predict_proba"
        )[:, 1]
        calibration = cal.fit_calibration(inner_probability, y_train)
        model = make_pipeline(name, seed).fit(x_train, y_train)
        raw = model.predict_proba(inputs.iloc[test])[:, 1]
        for variant, inner_scores, probability in (
            ("raw", inner_probability, raw),
            ("calibrated", calibration.apply(inner_probability), calibration.apply(raw)),
        ):
            threshold = best_threshold(y_train, inner_scores)
            oof[variant][repeat, test] = probability
            flags = probability >= threshold
            flagged[variant][repeat, test] = flags
            for metric, value in _scores(target[test], probability, threshold).items():
                folds[variant][metric].append(value)
            confusion[variant][repeat] += confusion_matrix(
                target[test], flags.astype(np.int64), labels=[0, 1]
            )
        if progress is not None:
            progress(f"{candidate.label} : pli {index + 1}/{len(splits)}")
    decision = cal.keep_calibration(folds["raw"]["brier"], folds["calibrated"]["brier"])
    kept = "calibrated" if decision["kept"] else "raw"
    return CandidateResult(
        name=name,
        label=candidate.label,
        hyper_parameters=dict(candidate.hyper_parameters),
        folds=folds[kept],
        oof_probabilities=oof[kept],
        confusion=confusion[kept].mean(axis=0),
        flagged=flagged[kept],
        calibration=decision,
    )


def fairness_groups(frame: pd.DataFrame) -> dict[str, tuple[NDArray[np.object_], list[str]]]:
    """The groups of the fairness audit: ``genre``, and age band (``<30`` ... ``50+``)."""
    ages = frame["age"].to_numpy().astype(np.float64)
    bands = np.empty(len(ages), dtype=object)
    for label, low, high in AGE_BANDS:
        bands[(ages >= low) & (ages <= high)] = label
    return {
        "genre": (frame["genre"].to_numpy().astype(object), [g.value for g in voc.Genre]),
        "age": (bands, [band[0] for band in AGE_BANDS]),
    }


def honest_figures(
    target: NDArray[np.int64],
    result: CandidateResult,
    *,
    groups: Mapping[str, tuple[NDArray[np.object_], list[str]]],
    seed: int,
) -> dict[str, Any]:
    """Pooled out-of-fold figures of a candidate, with 95 % intervals, and its calibration.

    Each employee is scored by the outer fold's model that did not see it and flagged at
    that fold's threshold, chosen on the inner folds: precision, recall and "N out of 100
    flagged" are therefore nested estimates. Figures are averaged over the repeats.
    """
    if result.flagged is None:
        raise ValidationError("Résultat de validation croisée sans signalements hors-pli.")
    intervals = bootstrap_intervals(
        target, result.oof_probabilities, result.flagged, groups=groups, seed=seed
    )
    checks = [calibration_check(target, row) for row in result.oof_probabilities]
    return {
        **intervals,
        "calibration": {
            "slope": float(np.mean([c["slope"] for c in checks])),
            "intercept": float(np.mean([c["intercept"] for c in checks])),
            "mean_predicted": float(np.mean([c["mean_predicted"] for c in checks])),
            "observed_rate": float(np.mean([c["observed_rate"] for c in checks])),
        },
    }


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


#: The issue's bar for the served probabilities' out-of-fold Brier score.
BRIER_TARGET: Final = 0.081


def evaluation_summary(report: EvaluationReport) -> dict[str, Any]:
    """What ``attrition model evaluate --json`` prints: the selected recipe's honest figures.

    Fold means (as before), the Brier score with and without recalibration and the rule's
    decision, the nested operating figures (threshold chosen in the inner folds) and a 95 %
    interval for every figure and every fairness row.
    """
    name = select_best(report)
    result = report.candidates[name]
    summary = result.summary()
    decision = result.calibration
    honest = result.honest
    figures = honest.get("figures", {})
    served_brier = summary["brier"]["mean"]
    out: dict[str, Any] = {"model": name, "seed": report.seed, "repeats": report.repeats}
    for metric in METRICS:
        out[metric] = round(summary[metric]["mean"], 6)
    out["calibration"] = {
        "kept": decision.get("kept"),
        "method": decision.get("method"),
        "rule": decision.get("rule"),
        "brier_raw": decision.get("brier_raw"),
        "brier_calibrated": decision.get("brier_calibrated"),
        "brier_served": served_brier,
        "gain": decision.get("gain"),
        "standard_error": decision.get("standard_error"),
        "folds_improved": decision.get("folds_improved"),
        "n_folds": decision.get("n_folds"),
        **honest.get("calibration", {}),
        "ece": figures.get("ece"),
        "brier_target": BRIER_TARGET,
        "brier_target_met": bool(served_brier <= BRIER_TARGET),
    }
    out["operating"] = {
        "threshold_criterion": report.threshold_criterion,
        "threshold_mean": summary["threshold"]["mean"],
        **{
            key: figures.get(key)
            for key in ("precision", "recall", "flag_rate", "flagged_leavers_per_100")
        },
    }
    out["intervals"] = {
        "method": honest.get("method"),
        "figures": figures,
        "fairness": honest.get("fairness", {}),
    }
    return _json_ready(out)


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
