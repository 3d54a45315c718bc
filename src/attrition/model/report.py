"""Figures, fairness audit and French model card of a trained model.

Every number comes from out-of-fold predictions (:attr:`TrainedModel.oof_probabilities`),
never from predictions on employees the model was fitted on, so the figures show what to
expect on new employees. :func:`render_report` draws the PNG figures and returns the numbers
behind them; :func:`attrition.model.card.render_model_card` turns those numbers and the
model's metadata into the Markdown model card (``docs/modele.md``), so the card cannot drift
from the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from attrition.data import vocabulary as voc
from attrition.errors import ValidationError
from attrition.model import features as feat
from attrition.model.compiled import CompiledLinearModel, NotCompilableError
from attrition.model.final import TrainedModel
from attrition.model.summary import FIGURE_FILES
from attrition.model.training import AGE_BANDS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Where the model card finds the figures, relative to the card (``docs/``).
FIGURE_PREFIX: Final = "img/modele"

#: Number of features shown on the importance figure.
TOP_FEATURES: Final = 15
CANDIDATE_METRICS: Final[tuple[tuple[str, str], ...]] = (
    ("roc_auc", "ROC-AUC"),
    ("pr_auc", "PR-AUC"),
    ("f1", "F1"),
    ("recall", "Rappel"),
    ("precision", "Précision"),
    ("brier", "Brier"),
    ("threshold", "Seuil"),
)


def age_band(age: NDArray[np.generic]) -> NDArray[np.object_]:
    """The age band label (``<30``, ``30-39``, ``40-49``, ``50+``) of each age."""
    ages = np.asarray(age, dtype=np.float64)
    bands = np.empty(len(ages), dtype=object)
    for label, low, high in AGE_BANDS:
        bands[(ages >= low) & (ages <= high)] = label
    return bands


def calibration_bins(
    target: NDArray[np.int64], probability: NDArray[np.float64], n_bins: int = 10
) -> list[dict[str, Any]]:
    """Reliability bins: mean predicted probability, observed rate and count of each bin.

    Bins are quantiles of the predicted probability (the binning of scikit-learn's
    ``calibration_curve(strategy="quantile")``, which returns the *observed* rate first);
    empty bins are dropped.
    """
    probability = np.asarray(probability, dtype=np.float64)
    target = np.asarray(target)
    edges = np.percentile(probability, np.linspace(0, 100, n_bins + 1))
    index = np.searchsorted(edges[1:-1], probability, side="right")
    counts = np.bincount(index, minlength=n_bins)
    predicted = np.bincount(index, weights=probability, minlength=n_bins)
    observed = np.bincount(index, weights=target.astype(np.float64), minlength=n_bins)
    return [
        {
            "mean_predicted": float(predicted[k] / counts[k]),
            "observed_rate": float(observed[k] / counts[k]),
            "n": int(counts[k]),
        }
        for k in range(n_bins)
        if counts[k]
    ]


def fairness_table(
    groups: NDArray[np.object_],
    target: NDArray[np.int64],
    flagged: NDArray[np.bool_],
    order: Sequence[str],
) -> list[dict[str, Any]]:
    """Per group: size, observed attrition rate, positive-prediction rate, recall, precision.

    Parameters
    ----------
    groups:
        Group label of each employee.
    target:
        0/1 outcome of each employee.
    flagged:
        Whether the model flags each employee (out-of-fold probability >= threshold).
    order:
        Group labels, in the order of the rows.

    Returns
    -------
    list of dict
        One row per group present; ``recall`` or ``precision`` is ``None`` when undefined
        (no leaver, or nobody flagged, in the group).
    """
    rows = []
    for group in order:
        mask = groups == group
        n = int(mask.sum())
        if n == 0:
            continue
        positives = int(target[mask].sum())
        predicted = int(flagged[mask].sum())
        true_positives = int((flagged[mask] & (target[mask] == 1)).sum())
        rows.append(
            {
                "group": group,
                "n": n,
                "observed_rate": positives / n,
                "positive_rate": predicted / n,
                "recall": true_positives / positives if positives else None,
                "precision": true_positives / predicted if predicted else None,
            }
        )
    return rows


def global_importance(model: TrainedModel, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Importance of each engineered feature, largest first.

    For a linear model: the mean absolute logit contribution over the employees (exact, the
    same contributions the API explains). Otherwise: permutation importance (drop of the
    PR-AUC when the feature is shuffled), on the training data.
    """
    try:
        compiled = CompiledLinearModel.from_pipeline(model.pipeline)
    except NotCompilableError:
        compiled = None
    if compiled is not None:
        columns = {name: frame[name].to_numpy() for name in voc.FEATURE_NAMES}
        matrix = compiled.contribution_matrix(columns)
        names = compiled.numeric + compiled.categorical
        values = np.abs(matrix).mean(axis=0)
        method = "mean_abs_contribution"
    else:
        inputs = feat.to_model_frame(frame)
        result = permutation_importance(
            model.pipeline,
            inputs,
            model.target,
            scoring="average_precision",
            n_repeats=5,
            random_state=model.seed,
        )
        names = tuple(inputs.columns)
        values = result.importances_mean
        method = "permutation_pr_auc"
    rows = [
        {
            "feature": name,
            "label": feat.FACTOR_LABELS[name],
            "value": float(value),
            "method": method,
        }
        for name, value in zip(names, values, strict=True)
    ]
    return sorted(rows, key=lambda row: row["value"], reverse=True)


def render_report(model: TrainedModel, frame: pd.DataFrame, out_dir: Path) -> dict[str, Any]:
    """Draw the model's figures as PNG files and return the numbers behind them.

    Parameters
    ----------
    model:
        The trained model; its out-of-fold probabilities feed every figure.
    frame:
        The ``employee_features`` rows the model was trained on, in the same order (for the
        fairness audit by ``genre`` and age band, and for the importance).
    out_dir:
        Folder of the PNG files (created if needed), usually ``docs/img/modele``.

    Returns
    -------
    dict
        JSON-serialisable: ``figures`` (key -> file name), ``threshold``, ``roc_auc``,
        ``pr_auc``, ``base_rate``, ``calibration`` (bins), ``confusion``, ``importance``,
        ``fairness`` (``genre`` and ``age`` tables).

    Raises
    ------
    ValidationError
        If the frame is not the one the model was trained on.
    """
    import matplotlib  # here, not at import: the API process never draws

    matplotlib.use("Agg")

    target = model.target
    probability = model.oof_probabilities
    if len(frame) != len(target) or not np.array_equal(
        frame[voc.TARGET].to_numpy().astype(np.int64), target
    ):
        raise ValidationError(
            "Les données ne sont pas celles sur lesquelles le modèle a été entraîné."
        )
    flagged = probability >= model.threshold
    out_dir.mkdir(parents=True, exist_ok=True)

    numbers: dict[str, Any] = {
        "figures": dict(FIGURE_FILES),
        "threshold": model.threshold,
        "roc_auc": float(roc_auc_score(target, probability)),
        "pr_auc": float(average_precision_score(target, probability)),
        "base_rate": float(target.mean()),
        "calibration": calibration_bins(target, probability),
        "calibration_raw": (
            None
            if model.raw_probabilities is None or not model.calibrated
            else calibration_bins(target, model.raw_probabilities)
        ),
        "confusion": confusion_matrix(target, flagged.astype(np.int64), labels=[0, 1]).tolist(),
        "importance": global_importance(model, frame),
        "fairness": {
            "genre": fairness_table(
                frame["genre"].to_numpy().astype(object),
                target,
                flagged,
                [g.value for g in voc.Genre],
            ),
            "age": fairness_table(
                age_band(frame["age"].to_numpy()), target, flagged, [b[0] for b in AGE_BANDS]
            ),
        },
    }

    drawings = {
        "roc": _roc_figure(target, probability, numbers["roc_auc"]),
        "precision_recall": _pr_figure(target, probability, numbers, flagged),
        "calibration": _calibration_figure(
            numbers["calibration"], numbers["calibration_raw"], probability
        ),
        "confusion": _confusion_figure(np.asarray(numbers["confusion"]), model.threshold),
        "importance": _importance_figure(numbers["importance"][:TOP_FEATURES]),
        "fairness": _fairness_figure(_nested_fairness(model.metrics) or numbers["fairness"]),
    }
    for key, figure in drawings.items():
        figure.savefig(out_dir / FIGURE_FILES[key], dpi=110, bbox_inches="tight")
    return numbers


def _figure(width: float = 6.0, height: float = 4.5) -> Figure:
    # Figure objects, not pyplot: no global figure registry, nothing to close.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _roc_figure(target: NDArray[np.int64], probability: NDArray[np.float64], auc: float) -> Figure:
    false_positive, true_positive, _ = roc_curve(target, probability)
    figure = _figure()
    axes = figure.subplots()
    axes.plot(false_positive, true_positive, label=f"Modèle (AUC = {_fr(auc)})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="Hasard")
    axes.set(
        xlabel="Taux de faux positifs",
        ylabel="Taux de vrais positifs (rappel)",
        title="Courbe ROC (prédictions hors-pli)",
    )
    axes.legend(loc="lower right")
    return figure


def _pr_figure(
    target: NDArray[np.int64],
    probability: NDArray[np.float64],
    numbers: Mapping[str, Any],
    flagged: NDArray[np.bool_],
) -> Figure:
    precision, recall, _ = precision_recall_curve(target, probability)
    true_positives = int((flagged & (target == 1)).sum())
    figure = _figure()
    axes = figure.subplots()
    axes.plot(recall, precision, label=f"Modèle (PR-AUC = {_fr(numbers['pr_auc'])})")
    axes.axhline(numbers["base_rate"], linestyle="--", color="grey", label="Taux de départ")
    axes.scatter(
        [true_positives / max(int(target.sum()), 1)],
        [true_positives / max(int(flagged.sum()), 1)],
        color="red",
        zorder=3,
        label=f"Seuil retenu ({_fr(numbers['threshold'])})",
    )
    axes.set(
        xlabel="Rappel",
        ylabel="Précision",
        title="Courbe précision-rappel (prédictions hors-pli)",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    axes.legend(loc="upper right")
    return figure


def _calibration_figure(
    bins: Sequence[Mapping[str, float]],
    raw_bins: Sequence[Mapping[str, float]] | None,
    probability: NDArray[np.float64],
) -> Figure:
    figure = _figure(6.0, 6.5)
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="Calibration parfaite")
    if raw_bins:
        top.plot(
            [b["mean_predicted"] for b in raw_bins],
            [b["observed_rate"] for b in raw_bins],
            marker="x",
            linestyle=":",
            color="tab:orange",
            label="Avant recalibration",
        )
    predicted = [b["mean_predicted"] for b in bins]
    observed = [b["observed_rate"] for b in bins]
    counts = {b["n"] for b in bins}
    label = (
        f"Probabilités servies (déciles de {counts.pop()} employés)"
        if len(counts) == 1
        else "Probabilités servies (déciles, effectif indiqué)"
    )
    top.plot(predicted, observed, marker="o", label=label)
    if len({b["n"] for b in bins}) > 1:
        for x, y, b in zip(predicted, observed, bins, strict=True):
            top.annotate(f"n={b['n']}", (x, y), textcoords="offset points", xytext=(4, -10))
    top.set(
        xlabel="Probabilité prédite moyenne du décile",
        ylabel="Taux de départ observé",
        title="Diagramme de fiabilité (prédictions hors-pli)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    top.legend(loc="upper left")
    bottom.hist(probability, bins=20, range=(0, 1), color="tab:blue", alpha=0.7)
    bottom.set(xlabel="Probabilité prédite", ylabel="Employés")
    return figure


def _confusion_figure(matrix: NDArray[np.int64], threshold: float) -> Figure:
    figure = _figure(5.0, 4.5)
    axes = figure.subplots()
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=color, fontsize=14)
    axes.set_xticks([0, 1], ["Non signalé", "Signalé"])
    axes.set_yticks([0, 1], ["Resté", "Parti"])
    axes.set(
        xlabel="Prédiction",
        ylabel="Réalité",
        title=f"Matrice de confusion au seuil {_fr(threshold)}",
    )
    return figure


def _importance_figure(rows: Sequence[Mapping[str, Any]]) -> Figure:
    figure = _figure(7.0, 0.35 * len(rows) + 1.5)
    axes = figure.subplots()
    labels = [row["label"] for row in rows][::-1]
    axes.barh(labels, [row["value"] for row in rows][::-1], color="tab:blue")
    method = rows[0]["method"] if rows else "mean_abs_contribution"
    axes.set(
        xlabel=(
            "Poids moyen dans le score, qu'il augmente ou diminue le risque"
            if method == "mean_abs_contribution"
            else "Perte de qualité du classement quand la variable est brouillée"
        ),
        title="Les variables qui pèsent le plus dans le score",
    )
    return figure


def _fairness_figure(tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> Figure:
    figure = _figure(9.0, 4.0)
    for axes, (attribute, title) in zip(
        figure.subplots(1, 2), (("genre", "Genre"), ("age", "Tranche d'âge")), strict=True
    ):
        rows = tables[attribute]
        positions = np.arange(len(rows))
        for offset, (key, label) in zip(
            (-0.27, 0.0, 0.27),
            (
                ("observed_rate", "Taux de départ"),
                ("positive_rate", "Taux de signalement"),
                ("recall", "Rappel"),
            ),
            strict=True,
        ):
            values = [row[key] if row[key] is not None else 0.0 for row in rows]
            axes.bar(positions + offset, values, width=0.27, label=label)
        axes.set_xticks(positions, [f"{row['group']}\n(n={row['n']})" for row in rows])
        axes.set(title=title, ylim=(0, 1))
    figure.axes[0].legend(loc="upper left", fontsize="small")
    return figure


def _fr(value: float | None, digits: int = 3) -> str:
    """A number the French way (decimal comma); an em dash when undefined."""
    if value is None:
        return "—"
    return f"{value:.{digits}f}".replace(".", ",")


def _nested_fairness(metrics: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]] | None:
    """The nested cross-validation's fairness rows stored with the model, flattened."""
    cv = metrics.get("cv") or {}
    selected = (cv.get("candidates") or {}).get(metrics.get("selected")) or {}
    nested = (selected.get("honest") or {}).get("fairness") or {}
    if not (nested.get("genre") and nested.get("age")):
        return None
    return {attribute: _flat_rows(rows) for attribute, rows in nested.items()}


def _flat_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Nested fairness rows (with intervals) as the plain rows of :func:`fairness_table`."""
    return [
        {
            "group": row["group"],
            "n": row["n"],
            **{key: row[key]["value"] for key in ("observed_rate", "positive_rate")},
            "recall": row["recall"]["value"],
            "precision": row["precision"]["value"],
        }
        for row in rows
    ]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{_fr(100 * value, 1)} %"


def _interval_text(interval: Mapping[str, Any] | None, percent: bool = False) -> str:
    """``value [low ; high]`` the French way; an em dash when undefined."""
    if not interval or interval.get("value") is None:
        return "—"
    show = _pct if percent else _fr
    if interval.get("low") is None:
        return show(interval["value"])
    return f"{show(interval['value'])} [{show(interval['low'])} ; {show(interval['high'])}]"


HONEST_ROWS: Final[tuple[tuple[str, str, bool], ...]] = (
    ("roc_auc", "ROC-AUC", False),
    ("pr_auc", "PR-AUC", False),
    ("brier", "Brier", False),
    ("ece", "Erreur de calibration attendue (ECE)", False),
    ("calibration_in_the_large", "Écart moyen prédit − observé", False),
    ("precision", "Précision des signalements", True),
    ("recall", "Rappel (part des départs signalés)", True),
    ("flag_rate", "Part des employés signalés", True),
)


def _nested_fairness_markdown(rows: Sequence[Mapping[str, Any]], header: str) -> list[str]:
    lines = [
        f"| {header} | Effectif | Départs | Taux de départ observé | Taux de signalement "
        "| Rappel | Précision |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {row['group']} | {row['n']} | {row['n_leavers']} | "
        + " | ".join(
            _interval_text(row[key], percent=True)
            for key in ("observed_rate", "positive_rate", "recall", "precision")
        )
        + " |"
        for row in rows
    ]
    return lines
