"""The compiled serving model: same probabilities as scikit-learn, exact explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from attrition.errors import AttritionError, ValidationError
from attrition.model import features as feat
from attrition.model.candidates import make_pipeline
from attrition.model.compiled import (
    CompiledLinearModel,
    NotCompilableError,
)
from attrition.model.final import TrainedModel
from attrition.model.runtime import PipelinePredictor, load_predictor
from attrition.model.training import design


@pytest.fixture(scope="module")
def compiled(trained_model: TrainedModel) -> CompiledLinearModel:
    return CompiledLinearModel.from_pipeline(trained_model.pipeline, trained_model.calibration)


@pytest.fixture(scope="module")
def columns(employee_frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: employee_frame[name].to_numpy() for name in employee_frame.columns}


def test_probabilities_match_sklearn_on_all_employees(
    trained_model: TrainedModel,
    compiled: CompiledLinearModel,
    employee_frame: pd.DataFrame,
    columns: dict[str, np.ndarray],
) -> None:
    # The served probability: the pipeline's, through the recipe's recalibration map.
    assert trained_model.calibration is not None
    expected = trained_model.predict_proba(feat.to_model_frame(employee_frame))
    actual = compiled.predict_proba(columns)
    rebuilt = CompiledLinearModel.from_state(compiled.to_state())
    np.testing.assert_array_equal(rebuilt.predict_proba(columns), actual)
    assert actual.shape == (1470,)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-9)


def test_single_record_path_matches_batch(
    compiled: CompiledLinearModel, employee_frame: pd.DataFrame, columns: dict[str, np.ndarray]
) -> None:
    batch = compiled.predict_proba(columns)
    for position in (0, 500, 1469):
        record = {
            name: value.item() if hasattr(value, "item") else value
            for name, value in employee_frame.iloc[position].items()
        }
        single = compiled.predict_proba(feat.columns_from_records([record]))
        assert single[0] == pytest.approx(batch[position], abs=1e-12)


def test_compiled_model_reads_the_pipeline(
    trained_model: TrainedModel, compiled: CompiledLinearModel
) -> None:
    assert compiled.numeric == feat.NUMERIC_FEATURES
    assert compiled.categorical == feat.CATEGORICAL_FEATURES
    assert compiled.intercept == trained_model.pipeline.named_steps["modele"].intercept_[0]
    assert not compiled.numeric_weight.flags.writeable


def test_explanations_add_up_to_the_logit(
    compiled: CompiledLinearModel, columns: dict[str, np.ndarray]
) -> None:
    explanations = compiled.explain(columns)
    probabilities = compiled.predict_proba(columns)
    assert len(explanations) == 1470
    for explanation, probability in zip(explanations, probabilities, strict=True):
        total = explanation.base_value + sum(c.contribution for c in explanation.contributions)
        assert total == pytest.approx(explanation.logit, abs=1e-9)
        assert explanation.probability == pytest.approx(probability, abs=1e-12)
        raw = 1 / (1 + np.exp(-explanation.logit))
        assert compiled.calibration is not None
        assert explanation.probability == pytest.approx(compiled.calibration.apply(raw))
        assert [c.feature for c in explanation.contributions] == list(feat.MODEL_FEATURES)


def test_contributions_are_centred_on_the_training_mean(
    compiled: CompiledLinearModel, columns: dict[str, np.ndarray]
) -> None:
    """An average employee gets the base value: every feature's mean contribution is 0."""
    matrix = compiled.contribution_matrix(columns)
    assert np.abs(matrix.mean(axis=0)).max() < 1e-9


def test_top_factors_are_sorted(
    compiled: CompiledLinearModel, columns: dict[str, np.ndarray]
) -> None:
    for explanation in compiled.explain(columns, top_k=4)[:200]:
        up = [c.contribution for c in explanation.top_up]
        down = [c.contribution for c in explanation.top_down]
        assert len(up) <= 4 and len(down) <= 4
        assert up == sorted(up, reverse=True) and all(value > 0 for value in up)
        assert down == sorted(down) and all(value < 0 for value in down)
        positives = sorted((c.contribution for c in explanation.contributions), reverse=True)
        assert up == [value for value in positives[:4] if value > 0]
        assert all(c.sign == (1 if c.contribution > 0 else -1) for c in explanation.top_up)


def test_explanation_carries_labels_and_raw_values(
    compiled: CompiledLinearModel, employee_frame: pd.DataFrame, columns: dict[str, np.ndarray]
) -> None:
    explanation = compiled.explain(columns)[0]
    by_feature = {c.feature: c for c in explanation.contributions}
    revenue = by_feature["log_revenu_mensuel"]
    assert revenue.label == "Revenu mensuel"
    assert revenue.source == "revenu_mensuel"
    assert revenue.raw_value == employee_frame["revenu_mensuel"].iloc[0]
    assert revenue.value == pytest.approx(np.log(employee_frame["revenu_mensuel"].iloc[0]))
    assert by_feature["poste"].value == employee_frame["poste"].iloc[0]


def test_unknown_category_is_refused(
    compiled: CompiledLinearModel, employee_frame: pd.DataFrame
) -> None:
    record = {
        name: value.item() if hasattr(value, "item") else value
        for name, value in employee_frame.iloc[0].items()
    }
    record["departement"] = "Juridique"
    with pytest.raises(ValidationError):
        compiled.predict_proba(feat.columns_from_records([record]))


def test_non_linear_pipeline_falls_back_to_sklearn(
    employee_frame: pd.DataFrame, columns: dict[str, np.ndarray]
) -> None:
    inputs, target = design(employee_frame)
    pipeline = make_pipeline("gradient_boosting", seed=7).fit(inputs, target)
    predictor = load_predictor(pipeline)
    assert isinstance(predictor, PipelinePredictor)
    assert not predictor.explainable
    np.testing.assert_array_equal(
        predictor.predict_proba(columns), pipeline.predict_proba(inputs)[:, 1]
    )
    with pytest.raises(AttritionError, match="linéaire"):
        predictor.explain(columns)


def test_linear_pipeline_is_compiled(trained_model: TrainedModel) -> None:
    predictor = load_predictor(trained_model.pipeline)
    assert isinstance(predictor, CompiledLinearModel)
    assert predictor.explainable


def test_other_layouts_are_not_compiled(employee_frame: pd.DataFrame) -> None:
    inputs, target = design(employee_frame)
    numeric = inputs[list(feat.NUMERIC_FEATURES)]
    bare = Pipeline([("modele", LogisticRegression(max_iter=2000))]).fit(numeric, target)
    with pytest.raises(NotCompilableError):
        CompiledLinearModel.from_pipeline(bare)
