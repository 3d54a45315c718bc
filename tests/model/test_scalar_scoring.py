"""The one-row scalar scoring path equals the vectorised one, on every employee."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from attrition.errors import ValidationError
from attrition.model import features as feat
from attrition.model.compiled import CompiledLinearModel
from attrition.model.explanations import score_and_explain, score_records
from attrition.model.final import TrainedModel
from attrition.model.runtime import LoadedModel
from attrition.model.scalar import ScalarScorer
from tests.helpers import loaded_model

TOLERANCE = 1e-12


def _loaded(compiled: CompiledLinearModel) -> LoadedModel:
    return loaded_model(compiled)


@pytest.fixture(scope="module", params=["calibrated", "raw"])
def model(request: pytest.FixtureRequest, trained_model: TrainedModel) -> LoadedModel:
    calibration = trained_model.calibration if request.param == "calibrated" else None
    return _loaded(CompiledLinearModel.from_pipeline(trained_model.pipeline, calibration))


@pytest.fixture(scope="module")
def records(employee_frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The 1,470 employees as the API hands them over (Python ints, floats, bools, str)."""
    rows = employee_frame[list(feat.voc.FEATURE_NAMES)].to_dict("records")
    out = []
    for row in rows:
        record = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for name in feat.voc.FEATURE_NAMES:
            field = feat.voc.FEATURES_BY_NAME[name]
            if field.kind == "int":
                record[name] = int(record[name])
        out.append(record)
    return out


def _same(scalar: dict[str, Any], vector: dict[str, Any]) -> None:
    assert scalar["valeur_de_base"] == vector["valeur_de_base"]
    assert abs(scalar["logit"] - vector["logit"]) <= TOLERANCE
    for side in ("facteurs_hausse", "facteurs_baisse"):
        assert [f["variable"] for f in scalar[side]] == [f["variable"] for f in vector[side]]
        assert [f["libelle"] for f in scalar[side]] == [f["libelle"] for f in vector[side]]
        for quick, reference in zip(scalar[side], vector[side], strict=True):
            assert quick["valeur"] == reference["valeur"]
            assert type(quick["valeur"]) is type(reference["valeur"])
            assert abs(quick["contribution"] - reference["contribution"]) <= TOLERANCE


def test_scalar_path_equals_vectorised_path_on_all_employees(
    model: LoadedModel, records: list[dict[str, Any]]
) -> None:
    """Probabilities within 1e-12, the same top factors in the same order, same values."""
    probabilities, explanations = score_and_explain(model, feat.columns_from_records(records))
    scorer = ScalarScorer(model.compiled)  # type: ignore[arg-type]
    assert len(records) == 1470
    for record, probability, explanation in zip(records, probabilities, explanations, strict=True):
        scored = scorer.score(record)
        assert scored is not None
        p, payload = scored
        assert abs(p - probability) <= TOLERANCE
        _same(payload, explanation)


@pytest.mark.parametrize("top_k", [1, 40])
def test_scalar_path_honours_top_k(
    model: LoadedModel, records: list[dict[str, Any]], top_k: int
) -> None:
    _, explanations = score_and_explain(model, feat.columns_from_records(records[:50]), top_k=top_k)
    scorer = ScalarScorer(model.compiled)  # type: ignore[arg-type]
    for record, explanation in zip(records[:50], explanations, strict=True):
        scored = scorer.score(record, top_k=top_k)
        assert scored is not None
        _same(scored[1], explanation)


def test_one_record_goes_through_the_scalar_path(
    model: LoadedModel, records: list[dict[str, Any]]
) -> None:
    """``score_records`` of one row uses the scalar scorer built with the model."""
    assert isinstance(model.scalar, ScalarScorer)
    (p,), (payload,) = score_records(model, [records[3]])
    expected = model.scalar.score(records[3])
    assert expected is not None
    assert (p, payload) == expected
    (q,), (reference,) = score_and_explain(model, feat.columns_from_records([records[3]]))
    assert abs(p - q) <= TOLERANCE
    _same(payload, reference)


def test_database_decimals_score_like_floats(
    model: LoadedModel, records: list[dict[str, Any]]
) -> None:
    record = {**records[5], "augmentation_salaire_precedente": Decimal("12.0")}
    scored = model.scalar.score(record)  # type: ignore[union-attr]
    assert scored is not None
    (q,), (reference,) = score_and_explain(model, feat.columns_from_records([record]))
    assert abs(scored[0] - q) <= TOLERANCE
    _same(scored[1], reference)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("departement", "Marketing", "Valeur inconnue pour « departement »"),
        ("frequence_deplacement", "Jamais", "Fréquence des déplacements inconnue"),
        ("niveau_hierarchique_poste", 9, "Valeur inconnue pour « niveau_hierarchique_poste »"),
        ("satisfaction_employee_equipe", 2.5, "« satisfaction_employee_equipe » doit être un"),
        ("age", float("nan"), "« age » contient une valeur manquante ou infinie"),
        ("age", "41", "« age » doit être numérique"),
        ("heures_supplementaires", "Oui", "« heures_supplementaires » doit être un booléen"),
    ],
)
def test_bad_input_is_refused_with_the_vectorised_message(
    model: LoadedModel, records: list[dict[str, Any]], field: str, value: Any, message: str
) -> None:
    """The scalar path declines what it cannot score; the one error path then explains why."""
    record = {**records[0], field: value}
    assert model.scalar.score(record) is None  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match=message):
        score_records(model, [record])


def test_missing_field_is_refused(model: LoadedModel, records: list[dict[str, Any]]) -> None:
    record = dict(records[0])
    del record["poste"]
    assert model.scalar.score(record) is None  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="Champ manquant : « poste »"):
        score_records(model, [record])


def test_several_records_use_the_vectorised_path(
    model: LoadedModel, records: list[dict[str, Any]]
) -> None:
    probabilities, explanations = score_records(model, records[:3])
    expected_p, expected = score_and_explain(model, feat.columns_from_records(records[:3]))
    assert probabilities == list(expected_p)
    assert explanations == expected


def test_one_probability_is_the_vectorised_number(model: LoadedModel) -> None:
    """The scalar path's sigmoid and calibration give the vectorised path's number, bit for bit."""
    import numpy as np

    compiled = model.compiled
    scorer = ScalarScorer(compiled)  # type: ignore[arg-type]
    logits = np.r_[np.random.default_rng(7).normal(0.0, 4.0, 5000), -800.0, -40.0, 0.0, 40.0, 800.0]
    expected = compiled._probability(logits)  # type: ignore[union-attr]
    got = [scorer.probability(float(x)) for x in logits]
    assert got == expected.tolist()
