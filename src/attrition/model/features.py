"""Feature engineering: the one implementation shared by training and serving.

Training and serving must compute the model inputs the same way, or the model silently
scores something it never saw. So there is a single :func:`engineer`, working on a mapping
of column name -> 1-D numpy array: training passes the columns of the whole frame, serving
passes one-row arrays built from a request by :func:`columns_from_records`. The serving path
never touches pandas (import time, memory, per-call overhead); :func:`to_model_frame`, the
only pandas code, imports it lazily and is used at training time only.

The engineered features were kept on repeated, stratified 5-fold cross-validation of the
regularised logistic regression (seed 7, PR-AUC first), and each one has a reason to exist:

* year counts enter as ``log(1 + years)``: the risk falls fast in the first years and then
  flattens, which a linear model can only follow on a log scale (PR-AUC +0.007 over raw years);
* income enters as ``log(income)``: a raise matters relative to the salary;
* the share of the tenure spent in the current role and the years since the last promotion
  relative to the tenure say "stuck in place", which raw year counts do not;
* the mean, the minimum and the number of lowest (1/4) satisfactions summarise the four
  survey answers; the answers themselves enter as categories, because the step from 1 to 2
  matters far more than from 3 to 4;
* hierarchy level is a category (the risk is concentrated at level 1, not linear in the
  level), travel frequency an ordinal 0/1/2 (its effect is monotonic: one coefficient);
* "no participation in the employee savings plan" is an indicator: having none at all is what
  goes with leaving, more than the count.

Tried and left out because cross-validation did not support them: income per hierarchy level
(exactly collinear, on the log scale, with log income and the level categories), tenure over
experience, job hopping rate (previous employers / experience; redundant with the log year
counts and the employer count), young-and-overtime interaction (PR-AUC -0.008).

``genre`` and ``statut_marital`` are read (optional in the API) but are not model inputs:
sex and family situation are protected criteria under French labour law (Code du travail,
art. L1132-1), and leaving them out costs at most 0.004 PR-AUC. ``genre`` is still used to
audit the model's fairness (see :mod:`attrition.model.report`). Age is kept: it is
predictive and also protected, which the model card states as a limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from attrition.data import vocabulary as voc
from attrition.errors import ValidationError

if TYPE_CHECKING:
    import pandas as pd

FloatArray = NDArray[np.float64]
ObjectArray = NDArray[np.object_]

#: Inputs read but deliberately not given to the model (protected criteria, see above).
EXCLUDED_FROM_MODEL: Final[tuple[str, ...]] = voc.NOT_MODEL_INPUTS

SATISFACTIONS: Final[tuple[str, ...]] = (
    "satisfaction_employee_environnement",
    "satisfaction_employee_nature_travail",
    "satisfaction_employee_equipe",
    "satisfaction_employee_equilibre_pro_perso",
)
#: The lowest answer of the 1-4 satisfaction scale.
LOWEST_SATISFACTION: Final = 1.0

TRAVEL_ORDER: Final[dict[str, float]] = {
    voc.FrequenceDeplacement.AUCUN.value: 0.0,
    voc.FrequenceDeplacement.OCCASIONNEL.value: 1.0,
    voc.FrequenceDeplacement.FREQUENT.value: 2.0,
}

#: Year counts that enter the model as log(1 + years).
YEAR_COUNTS: Final[tuple[str, ...]] = (
    "annees_experience_totale",
    "annees_dans_l_entreprise",
    "annees_dans_le_poste_actuel",
    "annees_sous_responsable_actuel",
    "annees_depuis_la_derniere_promotion",
)

#: Raw numeric inputs that enter the model unchanged (bools as 0/1).
PASSTHROUGH: Final[tuple[str, ...]] = (
    "age",
    "nombre_experiences_precedentes",
    "note_evaluation_precedente",
    "note_evaluation_actuelle",
    "heures_supplementaires",
    "augmentation_salaire_precedente",
    "nombre_participation_pee",
    "nb_formations_suivies",
    "distance_domicile_travail",
    "niveau_education",
)


def _integer_levels(name: str) -> tuple[str, ...]:
    field = voc.FEATURES_BY_NAME[name]
    assert field.low is not None and field.high is not None
    return tuple(str(level) for level in range(int(field.low), int(field.high) + 1))


#: Categorical model inputs and their categories, fixed from the vocabulary (not from the
#: data) so that the encoder's columns never depend on which categories a fold happens to hold.
CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "departement": voc.FEATURES_BY_NAME["departement"].categories,
    "poste": voc.FEATURES_BY_NAME["poste"].categories,
    "domaine_etude": voc.FEATURES_BY_NAME["domaine_etude"].categories,
    "niveau_hierarchique_poste": _integer_levels("niveau_hierarchique_poste"),
    **{name: _integer_levels(name) for name in SATISFACTIONS},
}

NUMERIC_FEATURES: Final[tuple[str, ...]] = (
    "age",
    "log_revenu_mensuel",
    "nombre_experiences_precedentes",
    *(f"log_{name}" for name in YEAR_COUNTS),
    "part_anciennete_dans_le_poste",
    "promotion_relative_anciennete",
    "satisfaction_moyenne",
    "satisfaction_minimale",
    "nombre_satisfactions_faibles",
    "note_evaluation_precedente",
    "note_evaluation_actuelle",
    "heures_supplementaires",
    "augmentation_salaire_precedente",
    "nombre_participation_pee",
    "sans_participation_pee",
    "nb_formations_suivies",
    "distance_domicile_travail",
    "niveau_education",
    "frequence_deplacement",
)
CATEGORICAL_FEATURES: Final[tuple[str, ...]] = tuple(CATEGORIES)
#: Every model input, in the order the model sees them.
MODEL_FEATURES: Final[tuple[str, ...]] = NUMERIC_FEATURES + CATEGORICAL_FEATURES

#: Raw input field each engineered feature mostly derives from (shown beside explanations).
SOURCE_OF: Final[dict[str, str]] = {
    **{name: name for name in PASSTHROUGH},
    "log_revenu_mensuel": "revenu_mensuel",
    **{f"log_{name}": name for name in YEAR_COUNTS},
    "part_anciennete_dans_le_poste": "annees_dans_le_poste_actuel",
    "promotion_relative_anciennete": "annees_depuis_la_derniere_promotion",
    "satisfaction_moyenne": "satisfaction_employee_environnement",
    "satisfaction_minimale": "satisfaction_employee_environnement",
    "nombre_satisfactions_faibles": "satisfaction_employee_environnement",
    "sans_participation_pee": "nombre_participation_pee",
    "frequence_deplacement": "frequence_deplacement",
    **{name: name for name in CATEGORIES},
}

#: Plain French label of each engineered feature, for explanations shown to HR users.
FEATURE_LABELS: Final[dict[str, str]] = {
    **{name: voc.FEATURES_BY_NAME[name].label for name in PASSTHROUGH},
    **{name: voc.FEATURES_BY_NAME[name].label for name in CATEGORIES},
    "log_revenu_mensuel": "Revenu mensuel",
    "log_annees_experience_totale": "Années d'expérience totale",
    "log_annees_dans_l_entreprise": "Ancienneté dans l'entreprise",
    "log_annees_dans_le_poste_actuel": "Ancienneté dans le poste actuel",
    "log_annees_sous_responsable_actuel": "Années sous le responsable actuel",
    "log_annees_depuis_la_derniere_promotion": "Années depuis la dernière promotion",
    "part_anciennete_dans_le_poste": "Part de l'ancienneté passée dans le poste actuel",
    "promotion_relative_anciennete": "Attente de promotion rapportée à l'ancienneté",
    "satisfaction_moyenne": "Satisfaction moyenne (4 questions)",
    "satisfaction_minimale": "Satisfaction la plus basse (4 questions)",
    "nombre_satisfactions_faibles": "Nombre de satisfactions au plus bas (1 sur 4)",
    "sans_participation_pee": "Aucune participation au PEE",
    "frequence_deplacement": "Fréquence des déplacements",
}

#: Yes/no factors as HR users read them: a positive label, and whether the feature's value
#: answers it the other way round ("no PEE participation" = 1 reads "Participe au PEE : non").
YES_NO_FACTORS: Final[dict[str, tuple[str, bool]]] = {
    "sans_participation_pee": ("Participe au PEE (plan d'épargne entreprise)", True),
    "heures_supplementaires": ("Fait des heures supplémentaires", False),
}

#: The label a factor is shown with, everywhere people read one (the API's ``libelle``, the
#: result page, ``attrition predict``, the importance figure): yes/no factors under their
#: positive wording. :data:`FEATURE_LABELS` keeps the feature's own meaning (the model card's
#: coefficients are those of "no PEE participation").
FACTOR_LABELS: Final[dict[str, str]] = {
    **FEATURE_LABELS,
    **{name: label for name, (label, _) in YES_NO_FACTORS.items()},
}


def plain_factor(name: str, value: Any, label: str | None = None) -> tuple[str, Any]:
    """A factor's label and value as people read them.

    A yes/no factor's value becomes a bool answering its positive label (``sans_participation_pee``
    = 1 -> ``("Participe au PEE (plan d'épargne entreprise)", False)``); any other factor keeps
    its value, under :data:`FACTOR_LABELS` (or ``label``, then the code, if it has none).
    """
    if name in YES_NO_FACTORS and isinstance(value, bool | int | float):
        positive, reverse = YES_NO_FACTORS[name]
        return positive, bool(value) != reverse
    return FACTOR_LABELS.get(name, label or name), value


def factor_label(name: str, value: Any) -> str:
    """The API's human-readable ``libelle`` of a factor with this value.

    A yes/no factor's label carries its answer ("Participe au PEE (plan d'épargne
    entreprise) : non"), so that it never reads against ``valeur``, which stays the model
    variable's own (``sans_participation_pee`` = 1); any other factor keeps its plain label.
    """
    label, shown = plain_factor(name, value)
    if name in YES_NO_FACTORS and isinstance(shown, bool):
        return f"{label} : {'oui' if shown else 'non'}"
    return label


def log_income(income: FloatArray) -> FloatArray:
    """Natural log of the monthly income, floored at 1 so that it is always finite."""
    return np.log(np.maximum(income, 1.0))


def log_years(years: FloatArray) -> FloatArray:
    """``log(1 + years)``, with negative counts (impossible, but unchecked here) read as 0."""
    return np.log1p(np.maximum(years, 0.0))


def share(part: FloatArray, whole: FloatArray) -> FloatArray:
    """``part / (whole + 1)``: a ratio of year counts that is defined when ``whole`` is 0.

    Adding one year to the denominator avoids the division by zero of newcomers and damps
    the ratio for short tenures, where 1 year out of 1 says little.
    """
    return part / (np.maximum(whole, 0.0) + 1.0)


def satisfaction_summary(
    levels: Sequence[FloatArray],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Mean, minimum and number of lowest answers (1 on the 1-4 scale) over the surveys.

    Parameters
    ----------
    levels:
        One array per satisfaction question, all of the same length.

    Returns
    -------
    tuple of three float arrays
        ``(mean, minimum, count_lowest)``, one value per employee.
    """
    matrix = np.column_stack(levels)
    lowest = (matrix <= LOWEST_SATISFACTION).sum(axis=1).astype(np.float64)
    return matrix.mean(axis=1), matrix.min(axis=1), lowest


def indicator(condition: NDArray[np.bool_]) -> FloatArray:
    """A boolean array as 0.0/1.0, the form the scaler and the dot product need."""
    return condition.astype(np.float64)


def travel_ordinal(frequency: ObjectArray) -> FloatArray:
    """Travel frequency as 0 (Aucun), 1 (Occasionnel), 2 (Frequent).

    Raises
    ------
    ValidationError
        If a value is not one of the three frequencies.
    """
    try:
        return np.array([TRAVEL_ORDER[value] for value in frequency], dtype=np.float64)
    except (KeyError, TypeError) as exc:
        raise ValidationError(
            f"Fréquence des déplacements inconnue : {exc}. "
            f"Valeurs acceptées : {', '.join(TRAVEL_ORDER)}."
        ) from None


def integer_category(values: FloatArray, name: str) -> ObjectArray:
    """An integer scale as category labels ``"1"``, ``"2"``..., checked against its levels.

    Raises
    ------
    ValidationError
        If a value is not an integer or not one of the scale's levels.
    """
    if not np.all(values == np.round(values)):
        raise ValidationError(f"« {name} » doit être un entier.")
    labels = values.astype(np.int64).astype(str).astype(object)
    return _checked_category(labels, name)


def _checked_category(values: ObjectArray, name: str) -> ObjectArray:
    allowed = CATEGORIES[name]
    unknown = set(values.tolist()) - set(allowed)
    if unknown:
        raise ValidationError(
            f"Valeur inconnue pour « {name} » : {', '.join(map(repr, sorted(map(str, unknown))))}."
            f" Valeurs acceptées : {', '.join(allowed)}."
        )
    return values


def _column(columns: Mapping[str, NDArray[np.generic]], name: str, length: int | None) -> NDArray:
    if name not in columns:
        raise ValidationError(f"Colonne manquante : « {name} ».")
    array = np.asarray(columns[name])
    if array.ndim != 1:
        raise ValidationError(f"« {name} » doit être un tableau à une dimension.")
    if length is not None and len(array) != length:
        raise ValidationError(f"« {name} » n'a pas le même nombre de lignes que les autres.")
    return array


def _numeric(array: NDArray, name: str) -> FloatArray:
    try:
        values = array.astype(np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"« {name} » doit être numérique.") from None
    if not np.all(np.isfinite(values)):
        raise ValidationError(f"« {name} » contient une valeur manquante ou infinie.")
    return values


def engineer(columns: Mapping[str, NDArray[np.generic]]) -> dict[str, NDArray]:
    """Compute the model inputs from the raw employee columns.

    Only the fields of :data:`vocabulary.FEATURE_NAMES` are read, so identifiers, constant
    columns and the target may be present and are ignored.

    Parameters
    ----------
    columns:
        Column name -> 1-D array, all of the same length (one element per employee).
        Numbers and bools as numbers or bools, categories as their exact vocabulary strings.

    Returns
    -------
    dict of str to numpy.ndarray
        The engineered features in :data:`MODEL_FEATURES` order: float64 arrays for
        :data:`NUMERIC_FEATURES`, object arrays of category labels for
        :data:`CATEGORICAL_FEATURES`.

    Raises
    ------
    ValidationError
        A column is missing, not 1-D, of a different length, not numeric, not finite, or
        holds a category outside the vocabulary.
    """
    length = len(_column(columns, voc.FEATURE_NAMES[0], None))
    raw: dict[str, NDArray] = {}
    for field in voc.FEATURES:
        if field.name in EXCLUDED_FROM_MODEL:
            continue
        array = _column(columns, field.name, length)
        raw[field.name] = (
            array.astype(object) if field.kind == "category" else _numeric(array, field.name)
        )

    mean, minimum, lowest = satisfaction_summary([raw[name] for name in SATISFACTIONS])
    years = {f"log_{name}": log_years(raw[name]) for name in YEAR_COUNTS}
    engineered: dict[str, NDArray] = {
        **{name: raw[name] for name in PASSTHROUGH},
        "log_revenu_mensuel": log_income(raw["revenu_mensuel"]),
        **years,
        "part_anciennete_dans_le_poste": share(
            raw["annees_dans_le_poste_actuel"], raw["annees_dans_l_entreprise"]
        ),
        "promotion_relative_anciennete": share(
            raw["annees_depuis_la_derniere_promotion"], raw["annees_dans_l_entreprise"]
        ),
        "satisfaction_moyenne": mean,
        "satisfaction_minimale": minimum,
        "nombre_satisfactions_faibles": lowest,
        "sans_participation_pee": indicator(raw["nombre_participation_pee"] == 0),
        "frequence_deplacement": travel_ordinal(raw["frequence_deplacement"]),
        "departement": _checked_category(raw["departement"], "departement"),
        "poste": _checked_category(raw["poste"], "poste"),
        "domaine_etude": _checked_category(raw["domaine_etude"], "domaine_etude"),
        "niveau_hierarchique_poste": integer_category(
            raw["niveau_hierarchique_poste"], "niveau_hierarchique_poste"
        ),
        **{name: integer_category(raw[name], name) for name in SATISFACTIONS},
    }
    return {name: engineered[name] for name in MODEL_FEATURES}


def columns_from_records(records: Sequence[Mapping[str, object]]) -> dict[str, NDArray]:
    """Turn records (API payloads, database rows as dicts) into the columns :func:`engineer` reads.

    Parameters
    ----------
    records:
        One mapping per employee holding at least every field of
        :data:`vocabulary.MODEL_INPUTS` (the others are optional).

    Returns
    -------
    dict of str to numpy.ndarray
        One array per vocabulary field: float64 for numbers, bool for booleans, object for
        categories.

    Raises
    ------
    ValidationError
        A record lacks a field, or a boolean field holds something other than a bool.
    """
    columns: dict[str, NDArray] = {}
    for field in voc.FEATURES:
        if not field.required:
            # Not a model input: read when given, None when left out (never required).
            columns[field.name] = np.array([r.get(field.name) for r in records], dtype=object)
            continue
        try:
            values = [record[field.name] for record in records]
        except KeyError:
            raise ValidationError(f"Champ manquant : « {field.name} ».") from None
        if field.kind == "category":
            columns[field.name] = np.array(values, dtype=object)
        elif field.kind == "bool":
            # np.array(["Non"], dtype=bool) is True: refuse anything that is not a real bool.
            # Checked per type, not per value (a batch has 1,000 values and one or two types).
            if not all(issubclass(kind, bool | np.bool_) for kind in set(map(type, values))):
                raise ValidationError(f"« {field.name} » doit être un booléen.")
            columns[field.name] = np.array(values, dtype=bool)
        else:
            if any(issubclass(kind, bool | str) for kind in set(map(type, values))):
                raise ValidationError(f"« {field.name} » doit être numérique.")
            columns[field.name] = _numeric(np.array(values, dtype=object), field.name)
    return columns


def to_model_frame(columns: Mapping[str, NDArray[np.generic]] | pd.DataFrame) -> pd.DataFrame:
    """The engineered features as a DataFrame, the input of the scikit-learn pipelines.

    Training only: serving calls :func:`engineer` directly.

    Parameters
    ----------
    columns:
        The raw columns, as a mapping of arrays or a DataFrame (e.g. the rows of the
        ``employee_features`` view).

    Returns
    -------
    pandas.DataFrame
        One column per name of :data:`MODEL_FEATURES`, in that order.
    """
    import pandas as pd  # imported here to keep pandas off the serving path

    if isinstance(columns, pd.DataFrame):
        missing = [name for name in voc.FEATURE_NAMES if name not in columns.columns]
        if missing:
            raise ValidationError(f"Colonnes manquantes : {', '.join(missing)}.")
        arrays = {name: columns[name].to_numpy() for name in voc.FEATURE_NAMES}
        return pd.DataFrame(engineer(arrays), index=columns.index)
    return pd.DataFrame(engineer(columns))
