"""The vectorised serving explanation equals the full one, field by field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attrition.model import features as feat
from attrition.model.compiled import CompiledLinearModel
from attrition.model.training import TrainedModel


@pytest.fixture(scope="module")
def compiled(trained_model: TrainedModel) -> CompiledLinearModel:
    return CompiledLinearModel.from_pipeline(trained_model.pipeline)


@pytest.mark.parametrize("top_k", [1, 5, 40])
def test_top_factors_equal_explain_on_all_employees(
    compiled: CompiledLinearModel, employee_frame: pd.DataFrame, top_k: int
) -> None:
    columns = {name: employee_frame[name].to_numpy() for name in employee_frame.columns}
    fast = compiled.top_factors(columns, top_k=top_k)
    full = compiled.explain(columns, top_k=top_k)
    assert len(fast) == len(full) == 1470
    for quick, reference in zip(fast, full, strict=True):
        assert quick.base_value == reference.base_value
        assert quick.logit == reference.logit
        assert quick.probability == reference.probability
        assert quick.top_up == reference.top_up
        assert quick.top_down == reference.top_down
    np.testing.assert_array_equal([f.probability for f in fast], compiled.predict_proba(columns))


def test_top_factors_of_one_api_record(
    compiled: CompiledLinearModel, employee_frame: pd.DataFrame
) -> None:
    record = {
        name: value.item() if hasattr(value, "item") else value
        for name, value in employee_frame.iloc[7].items()
    }
    columns = feat.columns_from_records([record])
    (fast,) = compiled.top_factors(columns)
    (reference,) = compiled.explain(columns)
    assert fast.top_up == reference.top_up and fast.top_down == reference.top_down
    assert all(
        type(c.raw_value) is type(r.raw_value) for c, r in zip(fast.top_up, reference.top_up)
    )
