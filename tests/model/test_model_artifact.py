"""Artifacts: round trip, and refusal of tampered files and untrusted types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from attrition.errors import ArtifactIntegrityError
from attrition.model import features as feat
from attrition.model.artifact import TRUSTED_TYPES, dump_pipeline, load_pipeline, sha256_hex
from attrition.model.candidates import CANDIDATES, make_pipeline
from attrition.model.final import TrainedModel
from attrition.model.training import design


class Passthrough(TransformerMixin, BaseEstimator):
    """A harmless custom type: stands for anything skops does not know."""

    def fit(self, X: object, y: object = None) -> Passthrough:
        return self

    def transform(self, X: object) -> object:
        return X


def test_sha256_hex() -> None:
    assert (
        sha256_hex(b"abc")
        == (
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # pragma: allowlist secret
        )
    )


def test_round_trip_gives_the_same_predictions(
    trained_model: TrainedModel, employee_frame: pd.DataFrame
) -> None:
    data = dump_pipeline(trained_model.pipeline)
    loaded = load_pipeline(data, sha256_hex(data))
    inputs = feat.to_model_frame(employee_frame)
    np.testing.assert_array_equal(
        loaded.predict_proba(inputs), trained_model.pipeline.predict_proba(inputs)
    )


def test_checksum_is_case_and_space_insensitive(trained_model: TrainedModel) -> None:
    data = dump_pipeline(trained_model.pipeline)
    assert isinstance(load_pipeline(data, f" {sha256_hex(data).upper()}\n"), Pipeline)


def test_tampered_byte_is_refused(trained_model: TrainedModel) -> None:
    data = dump_pipeline(trained_model.pipeline)
    expected = sha256_hex(data)
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(ArtifactIntegrityError, match="SHA-256"):
        load_pipeline(bytes(tampered), expected)


def test_untrusted_type_is_refused_even_with_a_valid_checksum(
    employee_frame: pd.DataFrame,
) -> None:
    inputs, target = design(employee_frame)
    numeric = inputs[list(feat.NUMERIC_FEATURES)]
    pipeline = Pipeline([("custom", Passthrough()), ("modele", LogisticRegression(max_iter=2000))])
    data = sio.dumps(pipeline.fit(numeric, target))
    with pytest.raises(ArtifactIntegrityError, match=r"types non autorisés.*Passthrough"):
        load_pipeline(data, sha256_hex(data))


def test_garbage_is_refused() -> None:
    data = b"not a skops archive"
    with pytest.raises(ArtifactIntegrityError, match="skops"):
        load_pipeline(data, sha256_hex(data))


def test_something_else_than_a_pipeline_is_refused(employee_frame: pd.DataFrame) -> None:
    inputs, target = design(employee_frame)
    model = LogisticRegression(max_iter=2000).fit(inputs[list(feat.NUMERIC_FEATURES)], target)
    data = sio.dumps(model)
    with pytest.raises(ArtifactIntegrityError, match="pipeline"):
        load_pipeline(data, sha256_hex(data))


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_trusted_types_cover_every_candidate(name: str, employee_frame: pd.DataFrame) -> None:
    """Guards :data:`TRUSTED_TYPES` against a new candidate needing an unlisted type."""
    inputs, target = design(employee_frame)
    pipeline = make_pipeline(name, seed=7).fit(inputs.iloc[:400], target[:400])
    data = dump_pipeline(pipeline)
    assert set(sio.get_untrusted_types(data=data)) <= set(TRUSTED_TYPES)
    assert isinstance(load_pipeline(data, sha256_hex(data)), Pipeline)
