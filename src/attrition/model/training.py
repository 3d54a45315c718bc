"""Candidate models, their honest evaluation, and the fit of the chosen one.

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
import sklearn
from numpy.typing import NDArray
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from attrition.data import vocabulary as voc
from attrition.errors import ValidationError
from attrition.model import calibration as cal
from attrition.model import features as feat
from attrition.model.uncertainty import bootstrap_intervals

FloatArray = NDArray[np.float64]
Progress = Callable[[str], None]

#: Weight of recall relative to precision in the threshold criterion.
F_BETA: Final = 2.0
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


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model recipe: a name, a French label and its fixed hyper-parameters."""

    name: str
    label: str
    hyper_parameters: dict[str, Any]
    build: Callable[[dict[str, Any], int], Any]


def _preparation() -> ColumnTransformer:
    """Scale numbers; one-hot encode categories, then centre the indicators.

    Centring the indicators does not change what a logistic regression can fit (the intercept
    absorbs it) but stores the training frequency of every category in the pipeline
    (``StandardScaler.mean_``): the compiled model needs it to centre explanations.
    Categories come from the vocabulary, so every fold encodes the same columns.
    """
    one_hot = OneHotEncoder(
        categories=[list(feat.CATEGORIES[name]) for name in feat.CATEGORICAL_FEATURES],
        handle_unknown="error",
        sparse_output=False,
        dtype=np.float64,
    )
    categories = Pipeline([("one_hot", one_hot), ("centrage", StandardScaler(with_std=False))])
    return ColumnTransformer(
        [
            ("numeriques", StandardScaler(), list(feat.NUMERIC_FEATURES)),
            ("categories", categories, list(feat.CATEGORICAL_FEATURES)),
        ],
        remainder="drop",
        sparse_threshold=0.0,
    )


def _logistic(params: dict[str, Any], seed: int) -> LogisticRegression:
    return LogisticRegression(**params, random_state=seed)


def _boosting(params: dict[str, Any], seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(**params, random_state=seed)


def _forest(params: dict[str, Any], seed: int) -> RandomForestClassifier:
    return RandomForestClassifier(**params, random_state=seed, n_jobs=1)


#: The candidates, simplest first (the order breaks ties in :func:`select_best`). Their
#: hyper-parameters were set on repeated cross-validation; the tree models are kept small
#: enough for the full evaluation to run in about a minute on two cores.
CANDIDATES: Final[dict[str, Candidate]] = {
    candidate.name: candidate
    for candidate in (
        Candidate(
            "regression_logistique",
            "Régression logistique (L2)",
            # C chosen on CV among 0.03..1; no class weights: they would distort the
            # probabilities shown to HR, and the F2 threshold already favours recall.
            {"C": 0.1, "l1_ratio": 0.0, "solver": "lbfgs", "max_iter": 5000},
            _logistic,
        ),
        Candidate(
            "gradient_boosting",
            "Gradient boosting (HistGradientBoosting)",
            {
                "learning_rate": 0.05,
                "max_iter": 200,
                "max_depth": 2,
                "min_samples_leaf": 20,
                "l2_regularization": 1.0,
                "early_stopping": False,
            },
            _boosting,
        ),
        Candidate(
            "foret_aleatoire",
            "Forêt aléatoire",
            {"n_estimators": 150, "min_samples_leaf": 3, "max_features": "sqrt"},
            _forest,
        ),
    )
}


def make_pipeline(name: str, seed: int) -> Pipeline:
    """Build the unfitted pipeline (preparation + classifier) of a candidate.

    Parameters
    ----------
    name:
        Key of :data:`CANDIDATES`.
    seed:
        Random state of the classifier.

    Raises
    ------
    ValidationError
        If the candidate does not exist.
    """
    try:
        candidate = CANDIDATES[name]
    except KeyError:
        raise ValidationError(
            f"Modèle candidat inconnu : « {name} ». Candidats : {', '.join(CANDIDATES)}."
        ) from None
    classifier = candidate.build(dict(candidate.hyper_parameters), seed)
    return Pipeline([("preparation", _preparation()), ("modele", classifier)])


def design(frame: pd.DataFrame) -> tuple[pd.DataFrame, NDArray[np.int64]]:
    """The model inputs and the 0/1 target of an ``employee_features`` frame."""
    if voc.TARGET not in frame.columns:
        raise ValidationError(f"Colonne cible manquante : « {voc.TARGET} ».")
    target = frame[voc.TARGET].to_numpy().astype(np.int64)
    return feat.to_model_frame(frame), target


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


def _scores(
    target: NDArray[np.int64], probability: FloatArray, threshold: float
) -> dict[str, float]:
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
