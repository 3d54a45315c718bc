"""Feature engineering: each function on hand-computed values, and training/serving parity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from attrition.data import vocabulary as voc
from attrition.errors import ValidationError
from attrition.model import features as feat


def _record(**overrides: object) -> dict[str, object]:
    """One valid employee as the API would send it."""
    record: dict[str, object] = {
        "age": 30,
        "genre": "F",
        "revenu_mensuel": 4000,
        "statut_marital": "Célibataire",
        "departement": "Consulting",
        "poste": "Consultant",
        "nombre_experiences_precedentes": 2,
        "annees_experience_totale": 7,
        "annees_dans_l_entreprise": 3,
        "annees_dans_le_poste_actuel": 2,
        "satisfaction_employee_environnement": 1,
        "note_evaluation_precedente": 3,
        "niveau_hierarchique_poste": 2,
        "satisfaction_employee_nature_travail": 4,
        "satisfaction_employee_equipe": 1,
        "satisfaction_employee_equilibre_pro_perso": 2,
        "note_evaluation_actuelle": 3,
        "heures_supplementaires": True,
        "augmentation_salaire_precedente": 12.0,
        "nombre_participation_pee": 0,
        "nb_formations_suivies": 2,
        "distance_domicile_travail": 10,
        "niveau_education": 3,
        "domaine_etude": "Marketing",
        "frequence_deplacement": "Frequent",
        "annees_depuis_la_derniere_promotion": 1,
        "annees_sous_responsable_actuel": 2,
    }
    record.update(overrides)
    return record


def test_log_income_is_natural_log_floored_at_one() -> None:
    result = feat.log_income(np.array([1000.0, math.e, 0.0]))
    np.testing.assert_allclose(result, [math.log(1000), 1.0, 0.0])


def test_log_years_is_log1p_with_negatives_as_zero() -> None:
    result = feat.log_years(np.array([0.0, 1.0, 9.0, -3.0]))
    np.testing.assert_allclose(result, [0.0, math.log(2), math.log(10), 0.0])


def test_share_divides_by_whole_plus_one_even_when_whole_is_zero() -> None:
    result = feat.share(np.array([2.0, 0.0, 3.0]), np.array([3.0, 0.0, 0.0]))
    np.testing.assert_allclose(result, [0.5, 0.0, 3.0])


def test_satisfaction_summary() -> None:
    levels = [
        np.array([1.0, 4.0]),
        np.array([2.0, 4.0]),
        np.array([1.0, 3.0]),
        np.array([4.0, 4.0]),
    ]
    mean, minimum, lowest = feat.satisfaction_summary(levels)
    np.testing.assert_allclose(mean, [2.0, 3.75])
    np.testing.assert_allclose(minimum, [1.0, 3.0])
    np.testing.assert_allclose(lowest, [2.0, 0.0])


def test_indicator_is_float_zero_one() -> None:
    result = feat.indicator(np.array([True, False]))
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, [1.0, 0.0])


def test_travel_ordinal_orders_frequencies() -> None:
    values = np.array(["Aucun", "Occasionnel", "Frequent"], dtype=object)
    np.testing.assert_array_equal(feat.travel_ordinal(values), [0.0, 1.0, 2.0])


def test_travel_ordinal_refuses_unknown_frequency() -> None:
    with pytest.raises(ValidationError, match="Fréquence des déplacements inconnue"):
        feat.travel_ordinal(np.array(["Souvent"], dtype=object))


def test_integer_category_labels_levels() -> None:
    result = feat.integer_category(np.array([1.0, 5.0]), "niveau_hierarchique_poste")
    assert result.tolist() == ["1", "5"]


@pytest.mark.parametrize("value", [2.5, 6.0, 0.0])
def test_integer_category_refuses_non_levels(value: float) -> None:
    with pytest.raises(ValidationError, match="niveau_hierarchique_poste"):
        feat.integer_category(np.array([value]), "niveau_hierarchique_poste")


def test_declared_features_are_consistent() -> None:
    assert feat.MODEL_FEATURES == feat.NUMERIC_FEATURES + feat.CATEGORICAL_FEATURES
    assert len(set(feat.MODEL_FEATURES)) == len(feat.MODEL_FEATURES)
    assert set(feat.FEATURE_LABELS) == set(feat.MODEL_FEATURES)
    assert set(feat.SOURCE_OF) == set(feat.MODEL_FEATURES)
    assert set(feat.SOURCE_OF.values()) <= set(voc.FEATURE_NAMES)
    assert not set(feat.EXCLUDED_FROM_MODEL) & set(feat.MODEL_FEATURES)


def test_engineer_computes_every_feature_by_hand() -> None:
    row = feat.engineer(feat.columns_from_records([_record()]))
    assert list(row) == list(feat.MODEL_FEATURES)
    expected = {
        "age": 30.0,
        "log_revenu_mensuel": math.log(4000),
        "nombre_experiences_precedentes": 2.0,
        "log_annees_experience_totale": math.log(8),
        "log_annees_dans_l_entreprise": math.log(4),
        "log_annees_dans_le_poste_actuel": math.log(3),
        "log_annees_sous_responsable_actuel": math.log(3),
        "log_annees_depuis_la_derniere_promotion": math.log(2),
        "part_anciennete_dans_le_poste": 2 / 4,
        "promotion_relative_anciennete": 1 / 4,
        "satisfaction_moyenne": (1 + 4 + 1 + 2) / 4,
        "satisfaction_minimale": 1.0,
        "nombre_satisfactions_faibles": 2.0,
        "note_evaluation_precedente": 3.0,
        "note_evaluation_actuelle": 3.0,
        "heures_supplementaires": 1.0,
        "augmentation_salaire_precedente": 12.0,
        "nombre_participation_pee": 0.0,
        "sans_participation_pee": 1.0,
        "nb_formations_suivies": 2.0,
        "distance_domicile_travail": 10.0,
        "niveau_education": 3.0,
        "frequence_deplacement": 2.0,
    }
    for name, value in expected.items():
        assert row[name].dtype == np.float64, name
        assert row[name][0] == pytest.approx(value), name
    assert {name: row[name][0] for name in feat.CATEGORICAL_FEATURES} == {
        "departement": "Consulting",
        "poste": "Consultant",
        "domaine_etude": "Marketing",
        "niveau_hierarchique_poste": "2",
        "satisfaction_employee_environnement": "1",
        "satisfaction_employee_nature_travail": "4",
        "satisfaction_employee_equipe": "1",
        "satisfaction_employee_equilibre_pro_perso": "2",
    }


def test_engineer_newcomer_has_no_division_by_zero() -> None:
    record = _record(
        annees_experience_totale=0,
        annees_dans_l_entreprise=0,
        annees_dans_le_poste_actuel=0,
        annees_depuis_la_derniere_promotion=0,
        annees_sous_responsable_actuel=0,
        heures_supplementaires=False,
        nombre_participation_pee=2,
    )
    row = feat.engineer(feat.columns_from_records([record]))
    assert row["part_anciennete_dans_le_poste"][0] == 0.0
    assert row["promotion_relative_anciennete"][0] == 0.0
    assert row["log_annees_dans_l_entreprise"][0] == 0.0
    assert row["heures_supplementaires"][0] == 0.0
    assert row["sans_participation_pee"][0] == 0.0
    assert all(np.isfinite(row[name]).all() for name in feat.NUMERIC_FEATURES)


def test_engineer_ignores_identifiers_constants_and_target() -> None:
    columns = feat.columns_from_records([_record()])
    extra = {
        **columns,
        "id_employee": np.array([12]),
        "nombre_heures_travaillees": np.array([80]),
        voc.TARGET: np.array([True]),
    }
    plain, with_extra = feat.engineer(columns), feat.engineer(extra)
    assert list(with_extra) == list(plain)
    for name in plain:
        np.testing.assert_array_equal(with_extra[name], plain[name])


def test_engineer_refuses_missing_column() -> None:
    columns = feat.columns_from_records([_record()])
    del columns["poste"]
    with pytest.raises(ValidationError, match="Colonne manquante"):
        feat.engineer(columns)


def test_engineer_refuses_columns_of_different_lengths() -> None:
    columns = feat.columns_from_records([_record()])
    columns["age"] = np.array([30.0, 31.0])
    with pytest.raises(ValidationError, match="même nombre de lignes"):
        feat.engineer(columns)


def test_engineer_refuses_missing_value() -> None:
    columns = feat.columns_from_records([_record()])
    columns["age"] = np.array([np.nan])
    with pytest.raises(ValidationError, match="valeur manquante"):
        feat.engineer(columns)


def test_engineer_refuses_unknown_category() -> None:
    columns = feat.columns_from_records([_record(poste="Astronaute")])
    with pytest.raises(ValidationError, match="poste"):
        feat.engineer(columns)


def test_columns_from_records_types() -> None:
    columns = feat.columns_from_records([_record(), _record(age=45)])
    assert columns["age"].dtype == np.float64
    assert columns["heures_supplementaires"].dtype == np.bool_
    assert columns["poste"].dtype == object
    assert columns["age"].tolist() == [30.0, 45.0]
    assert set(columns) == set(voc.FEATURE_NAMES)


def test_columns_from_records_refuses_text_for_a_bool() -> None:
    with pytest.raises(ValidationError, match="booléen"):
        feat.columns_from_records([_record(heures_supplementaires="Non")])


def test_columns_from_records_refuses_text_for_a_number() -> None:
    with pytest.raises(ValidationError, match="numérique"):
        feat.columns_from_records([_record(age="30")])


def test_columns_from_records_refuses_missing_field() -> None:
    record = _record()
    del record["age"]
    with pytest.raises(ValidationError, match="Champ manquant"):
        feat.columns_from_records([record])


def test_to_model_frame_matches_engineer(employee_frame: pd.DataFrame) -> None:
    frame = feat.to_model_frame(employee_frame)
    assert list(frame.columns) == list(feat.MODEL_FEATURES)
    assert len(frame) == len(employee_frame) == 1470
    engineered = feat.engineer({name: employee_frame[name].to_numpy() for name in employee_frame})
    for name in feat.MODEL_FEATURES:
        np.testing.assert_array_equal(frame[name].to_numpy(), engineered[name])


def test_serving_rows_equal_training_rows(employee_frame: pd.DataFrame) -> None:
    """One employee sent alone, as the API does, gets exactly their row of the training frame."""
    training = feat.to_model_frame(employee_frame)
    for position in (0, 1, 733, 1469):
        record = {
            name: value.item() if hasattr(value, "item") else value
            for name, value in employee_frame.iloc[position].items()
        }
        serving = feat.engineer(feat.columns_from_records([record]))
        for name in feat.MODEL_FEATURES:
            assert serving[name][0] == training[name].iloc[position], (position, name)
