"""The candidate models: one recipe each (preparation + classifier), fixed hyper-parameters.

Every model input goes through the same preparation (numbers scaled, categories one-hot
encoded and centred), so that a linear model can be compiled and explained exactly
(:mod:`attrition.model.compiled`); every random state derives from the one seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from attrition.errors import ValidationError
from attrition.model import features as feat


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
