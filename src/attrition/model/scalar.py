"""Scoring one employee in plain Python: the single-prediction path of the API.

For one row, numpy costs mostly by the number of calls on one-element arrays (about forty
ufuncs, reductions and array constructions, ~200 µs), where the arithmetic itself is a
dot product of some thirty numbers. :class:`ScalarScorer` holds the compiled model's
weights as Python floats and computes the same engineered features, contributions, logit,
probability and ranked factors with float arithmetic (~25 µs).

It is a second implementation of :func:`attrition.model.features.engineer` for one row, so
it is kept equal to the vectorised path by a test on all 1,470 employees
(tests/model/test_scalar_scoring.py: probabilities within 1e-12, same factors in the same
order, same shown values). It scores only what it can check: anything unusual (a missing
field, a category outside the vocabulary, a non-finite number, a wrong type) returns
``None``, and the caller takes the vectorised path, which raises the one validation error
message for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import numpy as np

from attrition.model import features as feat
from attrition.model.compiled import CompiledLinearModel

_NUMBER_TYPES = (int, float, Decimal, np.integer, np.floating)
_BOOL_TYPES = (bool, np.bool_)
#: Memoised logarithms: more than every monthly income and year count the vocabulary allows.
_MAX_LOGS = 100_000


class ScalarScorer:
    """The compiled model's weights as Python floats, to score one record at a time."""

    def __init__(self, model: CompiledLinearModel) -> None:
        self.model = model
        self.intercept = model.intercept
        # Per feature, its weights as Python floats, zipped once per model: (name, mean,
        # weight) for a number, (name, row of each category, weight of each row, offset)
        # for a category.
        self.numeric_terms = list(
            zip(
                model.numeric,
                model.numeric_mean.tolist(),
                model.numeric_weight.tolist(),
                strict=True,
            )
        )
        self.category_terms = list(
            zip(
                model.categorical,
                model.category_index,
                [table.tolist() for table in model.category_weight],
                model.category_offset.tolist(),
                strict=True,
            )
        )
        names = model.numeric + model.categorical
        self.names = names
        # Per feature: its label, and the field whose value people are shown (None: the
        # engineered value itself), as in explanations.score_and_explain.
        self.labels = [feat.FACTOR_LABELS[name] for name in names]
        self.yes_no = frozenset(feat.YES_NO_FACTORS) & set(names)
        self.shown = [_shown_source(name) for name in names]
        # Per feature, what its factor reads: (name, plain label, field shown or None,
        # whether its label carries a yes/no answer).
        self.factor_info = [
            (name, label, source, name in self.yes_no)
            for name, label, source in zip(names, self.labels, self.shown, strict=True)
        ]
        self._answers: dict[tuple[str, Any], str] = {}  # yes/no labels, per (name, value)
        self.inputs = [
            (f.name, f.kind) for f in feat.voc.FEATURES if f.name not in feat.EXCLUDED_FROM_MODEL
        ]
        # Logarithms come from the vectorised functions themselves (numpy's log may differ
        # from math.log in the last bit), computed once per value and kept.
        self._logs: dict[tuple[bool, float], float] = {}

    def log(self, value: float, *, income: bool) -> float:
        """``features.log_income`` or ``features.log_years`` of one value, memoised."""
        key = (income, value)
        result = self._logs.get(key)
        if result is None:
            function = feat.log_income if income else feat.log_years
            result = float(function(np.array([value]))[0])
            if len(self._logs) < _MAX_LOGS:
                self._logs[key] = result
        return result

    def score(
        self, record: Mapping[str, Any], top_k: int = 5
    ) -> tuple[float, dict[str, Any]] | None:
        """Probability and explanation payload of ``record``, or None (use the vectorised path).

        The payload is the one :func:`attrition.model.explanations.score_and_explain` gives.
        """
        raw = self._raw(record)
        if raw is None:
            return None
        x, answers = raw
        engineered = _engineer(x, self.log)
        if engineered is None:
            return None
        contributions = [
            (engineered[name] - mean) * weight for name, mean, weight in self.numeric_terms
        ]
        for name, index, weights, offset in self.category_terms:
            row = index.get(engineered[name])
            if row is None:
                return None
            contributions.append(weights[row] - offset)
        logit = self.intercept + _pairwise_sum(contributions)
        # numpy's exp may differ from math.exp in the last bit: the probability comes from
        # numpy's scalar exp and interp, so that it is the vectorised path's number.
        probability = self.probability(logit)
        # A stable sort on -c, as np.argsort(-matrix, kind="stable"): ties keep index order
        # (sorted's reverse keeps stability), and the decreasing list read backwards gives
        # the most negative first.
        ranked = sorted(range(len(contributions)), key=contributions.__getitem__, reverse=True)
        up = [j for j in ranked[:top_k] if contributions[j] > 0]
        down = [j for j in ranked[::-1][:top_k] if contributions[j] < 0]
        payload = {
            "valeur_de_base": self.intercept,
            "logit": logit,
            "facteurs_hausse": self._factors(up, contributions, engineered, x, answers),
            "facteurs_baisse": self._factors(down, contributions, engineered, x, answers),
        }
        return probability, payload

    def probability(self, logit: float) -> float:
        """The compiled model's probability of one logit: the vectorised path's number."""
        probability = _sigmoid_one(logit)
        calibration = self.model.calibration
        return probability if calibration is None else calibration.apply_one(probability)

    def _factors(
        self,
        indices: list[int],
        contributions: list[float],
        engineered: dict[str, Any],
        x: dict[str, Any],
        answers: dict[str, bool],
    ) -> list[dict[str, Any]]:
        """The factors ``indices`` name, as the explanation payload lists them."""
        factors = []
        for j in indices:
            name, label, source, yes_no = self.factor_info[j]
            value = engineered[name]
            if yes_no:
                key = (name, value)
                label = self._answers.get(key) or self._answers.setdefault(
                    key, feat.factor_label(name, value)
                )
            if source is not None:  # the field as sent (a yes/no answer as a boolean)
                value = answers[source] if source in answers else x[source]
            factors.append(
                {
                    "variable": name,
                    "libelle": label,
                    "valeur": value,
                    "contribution": contributions[j],
                }
            )
        return factors

    def _raw(self, record: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, bool]] | None:
        """Each model input as the value the model reads, and the yes/no answers as sent
        (``True``/``False``, where the model reads 1.0/0.0); None if not scorable here."""
        x: dict[str, Any] = {}
        answers: dict[str, bool] = {}
        for name, kind in self.inputs:
            value = record.get(name)
            if kind == "category":
                if type(value) is not str:
                    return None
                x[name] = value
            elif kind == "bool":
                if not isinstance(value, _BOOL_TYPES):
                    return None
                x[name] = float(value)
                answers[name] = bool(value)
            else:
                if isinstance(value, _BOOL_TYPES) or not isinstance(value, _NUMBER_TYPES):
                    return None
                number = float(value)
                if not math.isfinite(number):
                    return None
                x[name] = number
        return x, answers


def _sigmoid_one(logit: float) -> float:
    """``compiled._sigmoid`` of one logit, with numpy's scalar ``exp``: the same number to the
    last bit (``math.exp`` may differ from numpy's in the last bit), without the masks and
    the one-element arrays (about 0.3 µs instead of 4)."""
    x = np.float64(logit)
    if x >= 0:
        return float(1.0 / (1.0 + np.exp(-x)))
    e = np.exp(x)
    return float(e / (1.0 + e))


def _shown_source(name: str) -> str | None:
    source = feat.SOURCE_OF[name]
    return source if name == source or name == f"log_{source}" else None


def _engineer(x: dict[str, Any], log: Callable[..., float]) -> dict[str, Any] | None:
    """:func:`attrition.model.features.engineer` for one row (None: not scorable here)."""
    levels = [x[name] for name in feat.SATISFACTIONS]
    tenure = max(x["annees_dans_l_entreprise"], 0.0) + 1.0
    travel = feat.TRAVEL_ORDER.get(x["frequence_deplacement"])
    if travel is None:
        return None
    out: dict[str, Any] = {name: x[name] for name in feat.PASSTHROUGH}
    out["log_revenu_mensuel"] = log(x["revenu_mensuel"], income=True)
    for name in feat.YEAR_COUNTS:
        out[f"log_{name}"] = log(x[name], income=False)
    out["part_anciennete_dans_le_poste"] = x["annees_dans_le_poste_actuel"] / tenure
    out["promotion_relative_anciennete"] = x["annees_depuis_la_derniere_promotion"] / tenure
    out["satisfaction_moyenne"] = _pairwise_sum(levels) / len(levels)
    out["satisfaction_minimale"] = min(levels)
    out["nombre_satisfactions_faibles"] = float(
        sum(level <= feat.LOWEST_SATISFACTION for level in levels)
    )
    out["sans_participation_pee"] = 1.0 if x["nombre_participation_pee"] == 0 else 0.0
    out["frequence_deplacement"] = travel
    for name in ("departement", "poste", "domaine_etude"):
        if x[name] not in feat.CATEGORIES[name]:
            return None
        out[name] = x[name]
    for name in ("niveau_hierarchique_poste", *feat.SATISFACTIONS):
        value = x[name]
        if value != round(value):
            return None
        label = str(int(value))
        if label not in feat.CATEGORIES[name]:
            return None
        out[name] = label
    return out


def _pairwise_sum(values: list[float]) -> float:
    """Sum in numpy's order for a float64 row: its pairwise summation.

    numpy's add.reduce over a contiguous row sums pairwise (eight accumulators from eight
    elements on): adding in the same order gives the same logit to the last bit, not
    merely within rounding.
    """
    return _pairwise(values, 0, len(values))


def _pairwise(a: list[float], start: int, n: int) -> float:
    if n < 8:
        res = -0.0
        for i in range(start, start + n):
            res += a[i]
        return res
    if n <= 128:
        r = a[start : start + 8]
        i = 8
        while i < n - (n % 8):
            for k in range(8):
                r[k] += a[start + i + k]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[start + i]
            i += 1
        return res
    half = n // 2
    half -= half % 8
    return _pairwise(a, start, half) + _pairwise(a, start + half, n - half)
