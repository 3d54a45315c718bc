"""95 % intervals of the model's figures: a stratified bootstrap over employees, vectorised.

Every resample draws, with replacement, as many leavers from the leavers and as many stayers
from the stayers as the data holds (so the attrition rate is fixed), and is represented by
the number of times each employee is drawn. Each figure is then a weighted figure, computed
for every resample at once with cumulative sums over the employees sorted by score: a few
hundred resamples of 1,470 employees cost well under a second.

When there are several repeats of the cross-validation, the out-of-fold predictions of each
repeat are scored with the same resample weights and the figures averaged over the repeats:
the interval reflects which employees happened to be in the data, not a refit of the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Number of bootstrap resamples, and the interval's level.
N_RESAMPLES: Final = 400
LEVEL: Final = 0.95
#: Figures of :func:`weighted_figures`, in report order.
FIGURES: Final[tuple[str, ...]] = (
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "calibration_in_the_large",
    "precision",
    "recall",
    "flag_rate",
    "flagged_leavers_per_100",
)
#: Figures reported without interval: the expected calibration error is a sum of absolute
#: gaps, biased upwards on every resample, so its percentile interval would not cover it.
WITHOUT_INTERVAL: Final = frozenset({"ece"})
#: Per-group figures of the fairness rows.
GROUP_FIGURES: Final[tuple[str, ...]] = ("observed_rate", "positive_rate", "recall", "precision")


def stratified_weights(target: NDArray[np.int64], n_resamples: int, seed: int) -> FloatArray:
    """How many times each employee is drawn in each resample (``n_resamples`` x ``n``).

    Leavers are drawn among leavers and stayers among stayers, as many as there are.
    """
    rng = np.random.default_rng(seed)
    target = np.asarray(target)
    weights = np.zeros((n_resamples, len(target)))
    for value in (0, 1):
        members = np.flatnonzero(target == value)
        if len(members):
            weights[:, members] = rng.multinomial(
                len(members), np.full(len(members), 1.0 / len(members)), size=n_resamples
            )
    return weights


def _safe_divide(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    return np.divide(
        numerator,
        denominator,
        out=np.full(np.broadcast(numerator, denominator).shape, np.nan),
        where=denominator > 0,
    )


def weighted_figures(
    target: NDArray[np.int64],
    probability: FloatArray,
    flagged: NDArray[np.bool_],
    weights: FloatArray,
    n_bins: int = 10,
) -> dict[str, FloatArray]:
    """Every figure of :data:`FIGURES` under each row of ``weights`` (one value per row).

    With weights all equal to one, ROC-AUC and PR-AUC equal scikit-learn's
    ``roc_auc_score`` and ``average_precision_score`` (ties counted the same way).

    Parameters
    ----------
    target:
        0/1 outcome of each employee.
    probability:
        Out-of-fold probability of each employee.
    flagged:
        Whether each employee is flagged (probability at or above its fold's threshold).
    weights:
        ``(n_resamples, n)`` non-negative weights, e.g. :func:`stratified_weights`.
    n_bins:
        Quantile bins of the expected calibration error (fixed on the unweighted scores).
    """
    y = np.asarray(target, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    positive, negative = w @ y, w @ (1 - y)
    total = positive + negative

    order = np.argsort(p, kind="stable")
    sorted_p = p[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_p) != 0) + 1]
    pos_group = np.add.reduceat(w[:, order] * y[order], starts, axis=1)
    neg_group = np.add.reduceat(w[:, order] * (1 - y[order]), starts, axis=1)
    # ROC-AUC: each leaver beats the stayers scored below it, and half of those tied with it.
    neg_below = np.cumsum(neg_group, axis=1) - neg_group
    auc = _safe_divide(((neg_below + 0.5 * neg_group) * pos_group).sum(axis=1), positive * negative)
    # PR-AUC (average precision): precision at each distinct threshold, from the top score down.
    tp = np.cumsum(pos_group[:, ::-1], axis=1)
    fp = np.cumsum(neg_group[:, ::-1], axis=1)
    precision_curve = _safe_divide(tp, tp + fp)
    average_precision = _safe_divide(
        (np.nan_to_num(precision_curve) * pos_group[:, ::-1]).sum(axis=1), positive
    )

    brier = _safe_divide(w @ (p - y) ** 2, total)
    edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
    bins = np.searchsorted(edges[1:-1], p, side="right")
    ece = np.zeros(w.shape[0])
    for k in range(n_bins):
        members = bins == k
        if members.any():
            gap = w[:, members] @ (p[members] - y[members])
            ece += np.abs(gap) / np.where(total > 0, total, 1)
    mean_gap = _safe_divide(w @ (p - y), total)

    f = np.asarray(flagged, dtype=np.float64)
    true_flags = w @ (f * y)
    flags = w @ f
    precision = _safe_divide(true_flags, flags)
    return {
        "roc_auc": auc,
        "pr_auc": average_precision,
        "brier": brier,
        "ece": ece,
        "calibration_in_the_large": mean_gap,
        "precision": precision,
        "recall": _safe_divide(true_flags, positive),
        "flag_rate": _safe_divide(flags, total),
        "flagged_leavers_per_100": 100 * precision,
    }


def _group_figures(
    target: NDArray[np.int64], flagged: NDArray[np.bool_], weights: FloatArray
) -> dict[str, FloatArray]:
    y = np.asarray(target, dtype=np.float64)
    f = np.asarray(flagged, dtype=np.float64)
    total = weights.sum(axis=1)
    positive, flags, true_flags = weights @ y, weights @ f, weights @ (f * y)
    return {
        "observed_rate": _safe_divide(positive, total),
        "positive_rate": _safe_divide(flags, total),
        "recall": _safe_divide(true_flags, positive),
        "precision": _safe_divide(true_flags, flags),
    }


def _averaged_groups(
    target: NDArray[np.int64], flagged: NDArray[np.bool_], weights: FloatArray
) -> dict[str, FloatArray]:
    per_repeat = [_group_figures(target, f, weights) for f in flagged]
    return {name: np.mean([r[name] for r in per_repeat], axis=0) for name in GROUP_FIGURES}


def _interval(point: float, samples: FloatArray) -> dict[str, float | None]:
    finite = samples[np.isfinite(samples)]
    tail = 100 * (1 - LEVEL) / 2
    if not np.isfinite(point) or len(finite) < 0.9 * len(samples):
        return {
            "value": None if not np.isfinite(point) else float(point),
            "low": None,
            "high": None,
        }
    low, high = np.percentile(finite, [tail, 100 - tail])
    return {"value": float(point), "low": float(low), "high": float(high)}


def bootstrap_intervals(
    target: NDArray[np.int64],
    probability: FloatArray,
    flagged: NDArray[np.bool_],
    *,
    groups: Mapping[str, tuple[NDArray[np.object_], Sequence[str]]] | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Point values and 95 % percentile intervals of the figures and of every fairness row.

    Parameters
    ----------
    target:
        0/1 outcome of each employee.
    probability, flagged:
        ``(repeats, n)`` (or ``(n,)``) out-of-fold probabilities and flags; each figure is
        the mean over the repeats.
    groups:
        Attribute -> (group label of each employee, labels in row order), e.g. ``genre``
        and age band.
    n_resamples:
        Bootstrap resamples.
    seed:
        Seed of the resampling.

    Returns
    -------
    dict
        ``figures``: figure -> ``{"value", "low", "high"}``; ``fairness``: attribute -> one
        row per group (``group``, ``n``, ``n_leavers`` and each of :data:`GROUP_FIGURES` as
        ``{"value", "low", "high"}``); ``method``.
    """
    probability = np.atleast_2d(np.asarray(probability, dtype=np.float64))
    flagged = np.atleast_2d(np.asarray(flagged, dtype=bool))
    weights = stratified_weights(target, n_resamples, seed)
    ones = np.ones((1, len(target)))

    def averaged(w: FloatArray) -> dict[str, FloatArray]:
        per_repeat = [
            weighted_figures(target, p, f, w) for p, f in zip(probability, flagged, strict=True)
        ]
        return {name: np.mean([r[name] for r in per_repeat], axis=0) for name in FIGURES}

    point, samples = averaged(ones), averaged(weights)
    out: dict[str, Any] = {
        "method": (
            f"bootstrap stratifié sur les employés ({n_resamples} tirages, graine {seed}), "
            f"intervalles percentiles à {round(100 * LEVEL)} %"
        ),
        "n_resamples": n_resamples,
        "figures": {
            name: _interval(point[name][0], samples[name])
            if name not in WITHOUT_INTERVAL
            else {"value": float(point[name][0]), "low": None, "high": None}
            for name in FIGURES
        },
        "fairness": {},
    }
    for attribute, (labels, order) in (groups or {}).items():
        rows = []
        for group in order:
            mask = np.asarray(labels) == group
            if not mask.any():
                continue
            sub_target = np.asarray(target)[mask]

            group_point = _averaged_groups(sub_target, flagged[:, mask], ones[:, mask])
            group_samples = _averaged_groups(sub_target, flagged[:, mask], weights[:, mask])
            rows.append(
                {
                    "group": group,
                    "n": int(mask.sum()),
                    "n_leavers": int(sub_target.sum()),
                    **{
                        name: _interval(group_point[name][0], group_samples[name])
                        for name in GROUP_FIGURES
                    },
                }
            )
        out["fairness"][attribute] = rows
    return out


def recall_gap(rows: Sequence[Mapping[str, Any]]) -> float | None:
    """Largest minus smallest recall over the groups of one fairness table (None if < 2)."""
    values = [row["recall"]["value"] for row in rows if row["recall"]["value"] is not None]
    return float(max(values) - min(values)) if len(values) >= 2 else None
