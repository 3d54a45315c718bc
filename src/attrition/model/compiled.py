"""The serving path: a fitted linear pipeline folded into numpy arrays, with exact explanations.

A scikit-learn pipeline on a one-row DataFrame costs about a millisecond of pandas and
validation overhead per call; the logistic regression itself is a dot product. So the
pipeline is compiled once, at load time, into a weight per numeric feature, a weight table
per categorical feature and one intercept, all read from the fitted estimators (nothing is
re-learnt). Predictions then need :func:`features.engineer` and a dot product, without
pandas, and match the pipeline's ``predict_proba`` to rounding error.

Explanations are exact on the logit scale. Every model input is centred on its training
mean: numbers by the scaler's ``mean_``, one-hot indicators by the centring scaler that
follows the encoder (whose ``mean_`` is the training frequency of each category). With
``w`` the coefficients, a numeric feature contributes ``w * (x - mean) / scale`` and a
categorical one ``w[category] - sum_k(frequency_k * w_k)``; the base value is the intercept,
i.e. the logit of an employee at the training average. Hence
``base_value + sum(contributions) == logit`` for every employee.

With a recalibration map (:mod:`attrition.model.calibration`), the probability is that
strictly increasing map of ``sigmoid(logit)``: contributions, logit and order are unchanged.

A non-linear pipeline cannot be compiled: :func:`attrition.model.runtime.load_predictor`
then falls back to :class:`~attrition.model.runtime.PipelinePredictor`, which calls the
pipeline on a DataFrame and has no explanations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # scikit-learn is imported only to compile a pipeline, never to serve
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

from attrition.model import features as feat
from attrition.model.calibration import Calibration

FloatArray = NDArray[np.float64]


class NotCompilableError(ValueError):
    """The pipeline is not the linear layout :class:`CompiledLinearModel` knows how to fold."""


@dataclass(frozen=True, slots=True)
class Contribution:
    """The part of one engineered feature in one employee's logit.

    Attributes
    ----------
    feature:
        Engineered feature name (:data:`features.MODEL_FEATURES`).
    label:
        Its plain French label (:data:`features.FACTOR_LABELS`).
    value:
        Its value for this employee (a number, or the category label).
    source:
        The raw input field it mostly derives from (:data:`features.SOURCE_OF`).
    raw_value:
        That field's value as given.
    contribution:
        Logit-scale contribution, relative to an employee at the training average.
    sign:
        1 if it raises the risk, -1 if it lowers it, 0 if neutral.
    """

    feature: str
    label: str
    value: float | str
    source: str
    raw_value: Any
    contribution: float
    sign: int


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why the model gives one employee this probability.

    ``base_value + sum(c.contribution for c in contributions) == logit`` (to rounding), and
    ``probability == calibration(1 / (1 + exp(-logit)))`` (the identity without a map).
    ``top_up`` lists the largest positive contributions, largest first; ``top_down`` the most
    negative ones, most negative first.
    """

    base_value: float
    logit: float
    probability: float
    contributions: tuple[Contribution, ...]
    top_up: tuple[Contribution, ...]
    top_down: tuple[Contribution, ...]


class Predictor(Protocol):
    """What serving needs from a loaded model."""

    @property
    def explainable(self) -> bool: ...

    def predict_proba(self, columns: Mapping[str, NDArray[np.generic]]) -> FloatArray: ...

    def explain(
        self, columns: Mapping[str, NDArray[np.generic]], top_k: int = 5
    ) -> list[Explanation]: ...


def _sigmoid(logit: FloatArray) -> FloatArray:
    # Two branches so that neither exp() overflows for large |logit|.
    out = np.empty_like(logit)
    positive = logit >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-logit[positive]))
    exp = np.exp(logit[~positive])
    out[~positive] = exp / (1.0 + exp)
    return out


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class CompiledLinearModel:
    """A fitted ``Pipeline(ColumnTransformer, LogisticRegression)`` as numpy arrays.

    Build it with :meth:`from_pipeline`. All arrays are read-only copies, so one instance
    can serve concurrent requests.

    Attributes
    ----------
    numeric:
        Numeric feature names, in the pipeline's order.
    numeric_mean, numeric_weight:
        Training mean of each numeric feature, and its logit weight per unit
        (``coef / scale``).
    categorical:
        Categorical feature names, in the pipeline's order.
    category_index:
        Per categorical feature, category label -> row of its weight table.
    category_weight, category_offset:
        Per categorical feature, the logit weight of each category, and the training
        frequency-weighted mean of those weights (the centre of its contribution).
    intercept:
        The classifier's intercept: the logit of an employee at the training average.
    calibration:
        The recalibration map applied to ``sigmoid(logit)``, or ``None``.
    """

    numeric: tuple[str, ...]
    numeric_mean: FloatArray
    numeric_weight: FloatArray
    categorical: tuple[str, ...]
    category_index: tuple[dict[str, int], ...]
    category_weight: tuple[FloatArray, ...]
    category_offset: FloatArray
    intercept: float
    calibration: Calibration | None = None

    @property
    def explainable(self) -> bool:
        """Compiled models give exact explanations."""
        return True

    @classmethod
    def from_pipeline(
        cls, pipeline: Pipeline, calibration: Calibration | None = None
    ) -> CompiledLinearModel:
        """Fold the fitted pipeline's scaler, encoder and coefficients into arrays.

        Parameters
        ----------
        pipeline:
            Fitted ``Pipeline([("preparation", ColumnTransformer), ("modele",
            LogisticRegression)])`` as built by :func:`candidates.make_pipeline`: numbers through
            a ``StandardScaler``, categories through ``OneHotEncoder`` then a centring
            ``StandardScaler(with_std=False)``.
        calibration:
            The recipe's recalibration map, if it kept one.

        Raises
        ------
        NotCompilableError
            If the pipeline has another layout (use
            :func:`attrition.model.runtime.load_predictor` to fall back).
        """
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
            raise NotCompilableError("expected a two-step Pipeline")
        preparation, classifier = pipeline.steps[0][1], pipeline.steps[1][1]
        if not isinstance(preparation, ColumnTransformer):
            raise NotCompilableError("the first step is not a ColumnTransformer")
        if not isinstance(classifier, LogisticRegression) or classifier.coef_.shape[0] != 1:
            raise NotCompilableError("the last step is not a binary LogisticRegression")
        if list(classifier.classes_) not in ([0, 1], [False, True]):
            raise NotCompilableError("the classes are not 0/1")
        coef = classifier.coef_[0].astype(np.float64)

        numeric: list[str] = []
        means: list[float] = []
        weights: list[float] = []
        categorical: list[str] = []
        indexes: list[dict[str, int]] = []
        tables: list[FloatArray] = []
        offsets: list[float] = []
        position = 0
        for _name, transformer, columns in preparation.transformers_:
            if transformer == "drop" or len(columns) == 0:
                continue
            if isinstance(transformer, StandardScaler):
                width = len(columns)
                mean = _scaler_mean(transformer, width)
                scale = _scaler_scale(transformer, width)
                numeric.extend(columns)
                means.extend(mean.tolist())
                weights.extend((coef[position : position + width] / scale).tolist())
                position += width
            elif isinstance(transformer, Pipeline) and _is_centred_one_hot(transformer):
                encoder, centring = transformer.steps[0][1], transformer.steps[1][1]
                frequencies = _scaler_mean(centring, sum(map(len, encoder.categories_)))
                start = position
                for column, categories in zip(columns, encoder.categories_, strict=True):
                    width = len(categories)
                    known = {str(category) for category in categories}
                    if not known >= set(feat.CATEGORIES.get(column, ())):
                        raise NotCompilableError(f"the encoder misses categories of {column}")
                    table = coef[position : position + width].copy()
                    frequency = frequencies[position - start : position - start + width]
                    categorical.append(column)
                    indexes.append({str(category): k for k, category in enumerate(categories)})
                    tables.append(_read_only(table))
                    offsets.append(float(frequency @ table))
                    position += width
            else:
                raise NotCompilableError(f"unsupported transformer {type(transformer).__name__}")
        if position != coef.shape[0]:
            raise NotCompilableError("the transformers do not cover the coefficients")
        return cls(
            numeric=tuple(numeric),
            numeric_mean=_read_only(np.array(means)),
            numeric_weight=_read_only(np.array(weights)),
            categorical=tuple(categorical),
            category_index=tuple(indexes),
            category_weight=tuple(tables),
            category_offset=_read_only(np.array(offsets)),
            intercept=float(classifier.intercept_[0]),
            calibration=calibration,
        )

    def to_state(self) -> dict[str, Any]:
        """The arrays as JSON-ready lists: what serving needs, without scikit-learn.

        Floats survive a JSON round trip exactly (``repr`` is shortest-exact), so a model
        rebuilt by :meth:`from_state` scores bit for bit like this one.
        """
        return {
            "format": "attrition.compiled_linear.v1",
            "numeric": list(self.numeric),
            "numeric_mean": self.numeric_mean.tolist(),
            "numeric_weight": self.numeric_weight.tolist(),
            "categorical": list(self.categorical),
            "category_index": [dict(index) for index in self.category_index],
            "category_weight": [table.tolist() for table in self.category_weight],
            "category_offset": self.category_offset.tolist(),
            "intercept": self.intercept,
            "calibration": None if self.calibration is None else self.calibration.to_state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> CompiledLinearModel:
        """Rebuild a compiled model from :meth:`to_state` (checked shapes, no pickle)."""
        if state.get("format") != "attrition.compiled_linear.v1":
            raise NotCompilableError("unknown compiled-model format")
        numeric = tuple(str(n) for n in state["numeric"])
        categorical = tuple(str(c) for c in state["categorical"])
        mean = np.asarray(state["numeric_mean"], dtype=np.float64)
        weight = np.asarray(state["numeric_weight"], dtype=np.float64)
        tables = tuple(
            _read_only(np.asarray(t, dtype=np.float64)) for t in state["category_weight"]
        )
        indexes = tuple({str(k): int(v) for k, v in i.items()} for i in state["category_index"])
        offsets = np.asarray(state["category_offset"], dtype=np.float64)
        if not (
            mean.shape == weight.shape == (len(numeric),)
            and len(tables) == len(indexes) == len(categorical) == offsets.shape[0]
            and all(len(i) == t.shape[0] for i, t in zip(indexes, tables, strict=True))
            and set(numeric + categorical) <= set(feat.MODEL_FEATURES)
        ):
            raise NotCompilableError("inconsistent compiled-model state")
        try:
            calibration = Calibration.from_optional_state(state.get("calibration"))
        except (KeyError, TypeError, ValueError) as exc:
            raise NotCompilableError(f"inconsistent calibration state: {exc}") from exc
        return cls(
            numeric=numeric,
            numeric_mean=_read_only(mean),
            numeric_weight=_read_only(weight),
            categorical=categorical,
            category_index=indexes,
            category_weight=tables,
            category_offset=_read_only(offsets),
            intercept=float(state["intercept"]),
            calibration=calibration,
        )

    def contribution_matrix(self, columns: Mapping[str, NDArray[np.generic]]) -> FloatArray:
        """Logit contributions, one row per employee, one column per engineered feature.

        Columns follow ``numeric + categorical``; ``intercept + row.sum()`` is the logit.
        """
        engineered = feat.engineer(columns)
        return self._contributions(engineered)

    def _contributions(self, engineered: Mapping[str, NDArray[np.generic]]) -> FloatArray:
        length = len(next(iter(engineered.values())))
        out = np.empty((length, len(self.numeric) + len(self.categorical)))
        if self.numeric:
            values = np.column_stack([engineered[name] for name in self.numeric])
            out[:, : len(self.numeric)] = (values - self.numeric_mean) * self.numeric_weight
        for j, name in enumerate(self.categorical):
            index = self.category_index[j]
            rows = np.fromiter((index[v] for v in engineered[name]), np.intp, count=length)
            out[:, len(self.numeric) + j] = self.category_weight[j][rows] - self.category_offset[j]
        return out

    def logit(self, columns: Mapping[str, NDArray[np.generic]]) -> FloatArray:
        """The model's log-odds of leaving, one per employee."""
        return self.intercept + self.contribution_matrix(columns).sum(axis=1)

    def predict_proba(self, columns: Mapping[str, NDArray[np.generic]]) -> FloatArray:
        """Probability of leaving, one per employee (a 1-D array, not sklearn's 2 columns).

        Parameters
        ----------
        columns:
            Raw columns as :func:`features.engineer` reads them (e.g. from
            :func:`features.columns_from_records`).

        Raises
        ------
        ValidationError
            If the columns are invalid (see :func:`features.engineer`).
        """
        return self._probability(self.logit(columns))

    def _probability(self, logits: FloatArray) -> FloatArray:
        probability = _sigmoid(logits)
        return probability if self.calibration is None else self.calibration.apply(probability)

    def explain(
        self, columns: Mapping[str, NDArray[np.generic]], top_k: int = 5
    ) -> list[Explanation]:
        """Exact per-feature explanations of each employee's probability.

        Parameters
        ----------
        columns:
            Raw columns, as for :meth:`predict_proba`.
        top_k:
            How many factors to list in ``top_up`` and ``top_down``.

        Returns
        -------
        list of Explanation
            One per employee, in input order.
        """
        engineered = feat.engineer(columns)
        matrix = self._contributions(engineered)
        logits = self.intercept + matrix.sum(axis=1)
        probabilities = self._probability(logits)
        names = self.numeric + self.categorical
        explanations = []
        for i in range(matrix.shape[0]):
            contributions = tuple(
                Contribution(
                    feature=name,
                    label=feat.FACTOR_LABELS[name],
                    value=_python(engineered[name][i]),
                    source=feat.SOURCE_OF[name],
                    raw_value=_python(np.asarray(columns[feat.SOURCE_OF[name]])[i]),
                    contribution=float(matrix[i, j]),
                    sign=int(np.sign(matrix[i, j])),
                )
                for j, name in enumerate(names)
            )
            ranked = sorted(contributions, key=lambda c: c.contribution, reverse=True)
            explanations.append(
                Explanation(
                    base_value=self.intercept,
                    logit=float(logits[i]),
                    probability=float(probabilities[i]),
                    contributions=contributions,
                    top_up=tuple(c for c in ranked[:top_k] if c.contribution > 0),
                    top_down=tuple(c for c in ranked[::-1][:top_k] if c.contribution < 0),
                )
            )
        return explanations

    def ranked_factors(
        self, columns: Mapping[str, NDArray[np.generic]], top_k: int = 5
    ) -> RankedFactors:
        """The probabilities and the indices of the top factors of every employee, vectorised.

        The features are engineered once and the factors ranked with numpy (a stable sort,
        like :meth:`explain`, so ties come in the same order). Nothing per factor becomes an
        object here: :func:`attrition.model.explanations.score_and_explain` builds the JSON
        explanations from these lists.
        """
        engineered = feat.engineer(columns)
        matrix = self._contributions(engineered)
        logits = self.intercept + matrix.sum(axis=1)
        probabilities = self._probability(logits)
        ranked = np.argsort(-matrix, axis=1, kind="stable")
        up = ranked[:, :top_k]
        down = ranked[:, ::-1][:, :top_k]
        return RankedFactors(
            names=self.numeric + self.categorical,
            base_value=self.intercept,
            logits=logits.tolist(),
            probabilities=probabilities.tolist(),
            up_index=up.tolist(),
            up_value=np.take_along_axis(matrix, up, axis=1).tolist(),
            down_index=down.tolist(),
            down_value=np.take_along_axis(matrix, down, axis=1).tolist(),
            engineered=engineered,
            columns=columns,
        )


@dataclass(slots=True)
class RankedFactors:
    """:meth:`CompiledLinearModel.ranked_factors`: plain Python lists, one entry per employee.

    ``up_index[i]`` lists the feature indices (into ``names``) of employee ``i``'s largest
    contributions, decreasing, and ``up_value[i]`` those contributions (some may be <= 0
    when few factors raise the risk: callers keep the positive ones); ``down_*`` the same
    from the most negative. Feature values are turned into lists on first use only.
    """

    names: tuple[str, ...]
    base_value: float
    logits: list[float]
    probabilities: list[float]
    up_index: list[list[int]]
    up_value: list[list[float]]
    down_index: list[list[int]]
    down_value: list[list[float]]
    engineered: Mapping[str, NDArray[np.generic]]
    columns: Mapping[str, NDArray[np.generic]]
    _lists: dict[tuple[bool, str], list[Any]] = field(default_factory=dict)

    def engineered_values(self, name: str) -> list[Any]:
        """The engineered feature ``name`` of every employee, as Python values."""
        key = (True, name)
        if key not in self._lists:
            self._lists[key] = self.engineered[name].tolist()
        return self._lists[key]

    def raw_values(self, source: str) -> list[Any]:
        """The raw input field ``source`` of every employee, as Python values."""
        key = (False, source)
        if key not in self._lists:
            self._lists[key] = np.asarray(self.columns[source]).tolist()
        return self._lists[key]


def _is_centred_one_hot(transformer: Pipeline) -> bool:
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    steps = [step for _, step in transformer.steps]
    return (
        len(steps) == 2
        and isinstance(steps[0], OneHotEncoder)
        and isinstance(steps[1], StandardScaler)
        and not steps[1].with_std
        and steps[0].drop_idx_ is None
        and steps[0].min_frequency is None
        and steps[0].max_categories is None
    )


def _scaler_mean(scaler: StandardScaler, width: int) -> FloatArray:
    mean = getattr(scaler, "mean_", None)
    return np.zeros(width) if mean is None else np.asarray(mean, dtype=np.float64)


def _scaler_scale(scaler: StandardScaler, width: int) -> FloatArray:
    scale = getattr(scaler, "scale_", None)
    return np.ones(width) if scale is None else np.asarray(scale, dtype=np.float64)


def _read_only(array: FloatArray) -> FloatArray:
    array.setflags(write=False)
    return array
