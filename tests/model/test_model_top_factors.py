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
    return CompiledLinearModel.from_pipeline(trained_model.pipeline, trained_model.calibration)


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


def test_service_explanations_equal_the_reference_on_all_employees(
    compiled: CompiledLinearModel, employee_frame: pd.DataFrame
) -> None:
    """The fast JSON explanations (no per-factor objects) match :meth:`explain` exactly."""
    from datetime import UTC, datetime

    import orjson

    from attrition.model.runtime import LoadedModel
    from attrition.services.predictions import TOP_FACTORS, _factor, score_and_explain

    model = LoadedModel(
        id=1,
        version="v1",
        algorithm="regression_logistique",
        threshold=0.5,
        threshold_criterion="f2",
        metrics={},
        sha256="0" * 64,
        created_at=datetime.now(UTC),
        compiled=compiled,
    )
    records = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in employee_frame.to_dict("records")
    ]
    columns = feat.columns_from_records(records)
    probabilities, explanations = score_and_explain(model, columns)
    reference = compiled.explain(columns, top_k=TOP_FACTORS)
    assert len(explanations) == len(reference) == 1470
    np.testing.assert_array_equal(probabilities, compiled.predict_proba(columns))
    for fast, ref in zip(explanations, reference, strict=True):
        assert fast == {
            "valeur_de_base": ref.base_value,
            "logit": ref.logit,
            "facteurs_hausse": [_factor(f) for f in ref.top_up],
            "facteurs_baisse": [_factor(f) for f in ref.top_down],
        }
    # Plain JSON types, as stored and returned (orjson refuses numpy scalars by default).
    first = orjson.loads(orjson.dumps(explanations[0]))
    assert first["facteurs_hausse"][0].keys() == {"variable", "libelle", "valeur", "contribution"}
    assert any(e["facteurs_hausse"] for e in explanations)
    assert any(e["facteurs_baisse"] for e in explanations)
