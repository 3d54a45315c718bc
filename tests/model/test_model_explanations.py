"""Scoring with explanation: the vectorised serving path equals the full explanation, exactly."""

from __future__ import annotations

import numpy as np
import orjson
import pandas as pd
import pytest

from attrition.model import features as feat
from attrition.model.compiled import CompiledLinearModel
from attrition.model.explanations import (
    TOP_FACTORS,
    explanation_payload,
    factor_payload,
    score_and_explain,
)
from attrition.model.final import TrainedModel
from attrition.model.runtime import LoadedModel
from tests.helpers import loaded_model


@pytest.fixture(scope="module")
def compiled(trained_model: TrainedModel) -> CompiledLinearModel:
    return CompiledLinearModel.from_pipeline(trained_model.pipeline, trained_model.calibration)


@pytest.fixture(scope="module")
def model(compiled: CompiledLinearModel) -> LoadedModel:
    return loaded_model(compiled)


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


@pytest.mark.parametrize("top_k", [1, 5, 40])
def test_fast_explanations_equal_explain_on_all_employees(
    model: LoadedModel, compiled: CompiledLinearModel, employee_frame: pd.DataFrame, top_k: int
) -> None:
    """The ranked, vectorised path gives explain()'s payload field by field, for any top_k."""
    columns = {name: employee_frame[name].to_numpy() for name in employee_frame.columns}
    probabilities, fast = score_and_explain(model, columns, top_k=top_k)
    full = compiled.explain(columns, top_k=top_k)
    assert len(fast) == len(full) == 1470
    for quick, reference in zip(fast, full, strict=True):
        assert quick["valeur_de_base"] == reference.base_value
        assert quick["logit"] == reference.logit
        assert quick["facteurs_hausse"] == [factor_payload(f) for f in reference.top_up]
        assert quick["facteurs_baisse"] == [factor_payload(f) for f in reference.top_down]
        assert len(quick["facteurs_hausse"]) <= top_k
    np.testing.assert_array_equal(probabilities, compiled.predict_proba(columns))
    np.testing.assert_array_equal(probabilities, [e.probability for e in full])


def test_fast_explanation_of_one_api_record_keeps_value_types(
    model: LoadedModel, employee_frame: pd.DataFrame
) -> None:
    (record,) = _records(employee_frame.iloc[[7]])
    columns = feat.columns_from_records([record])
    _, (fast,) = score_and_explain(model, columns)
    (reference,) = explanation_payload(model, columns)
    assert fast == reference
    for side in ("facteurs_hausse", "facteurs_baisse"):
        assert [type(f["valeur"]) for f in fast[side]] == [
            type(f["valeur"]) for f in reference[side]
        ]


def test_service_explanations_equal_the_reference_on_all_employees(
    model: LoadedModel, compiled: CompiledLinearModel, employee_frame: pd.DataFrame
) -> None:
    """The fast JSON explanations (no per-factor objects) match :meth:`explain` exactly."""
    columns = feat.columns_from_records(_records(employee_frame))
    probabilities, explanations = score_and_explain(model, columns)
    reference = explanation_payload(model, columns)
    assert len(explanations) == len(reference) == 1470
    np.testing.assert_array_equal(probabilities, compiled.predict_proba(columns))
    assert explanations == reference
    assert all(
        len(e["facteurs_hausse"]) <= TOP_FACTORS and len(e["facteurs_baisse"]) <= TOP_FACTORS
        for e in explanations
    )
    # Plain JSON types, as stored and returned (orjson refuses numpy scalars by default).
    first = orjson.loads(orjson.dumps(explanations[0]))
    assert first["facteurs_hausse"][0].keys() == {"variable", "libelle", "valeur", "contribution"}
    assert any(e["facteurs_hausse"] for e in explanations)
    assert any(e["facteurs_baisse"] for e in explanations)
