"""Property-based tests (Hypothesis) of the input schema and the model's features.

* any valid employee profile is accepted and scored with a probability in [0, 1], the same
  alone or in a batch;
* any single field taken out of its domain (or left out, or added) is refused, naming that
  field, in French;
* a JSON document that matches the published JSON Schema of ``PredictionRequest`` is accepted
  exactly when the API's Pydantic model accepts it (``3087.0`` is an integer, ``"34"`` and
  ``true`` are not numbers). The cross-field rules (seniority within the career) cannot be
  written in JSON Schema: that property is stated for documents that obey them.

Examples per property: ATTRITION_PROPERTY_EXAMPLES (200 in `make test`, more in `make soak`);
the generation is derandomized so that a run is reproducible.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import jsonschema_rs
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import text

from attrition.api.schemas import EXAMPLE_EMPLOYEE, PredictionRequest
from attrition.api.translations import translate
from attrition.data.extracts import coherence_errors
from attrition.data.vocabulary import FEATURE_NAMES, FEATURES, FEATURES_BY_NAME, MODEL_INPUTS
from attrition.db.engine import Database
from attrition.model.artifact import load_pipeline
from attrition.model.compiled import Predictor
from attrition.model.features import columns_from_records
from attrition.model.runtime import load_predictor
from tests.helpers import Keys, auth
from tests.reliability.figures import Figures
from tests.reliability.profiles import coherent, json_values, valid_profiles

EXAMPLES = int(os.environ.get("ATTRITION_PROPERTY_EXAMPLES", "200"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SCHEMA = PredictionRequest.model_json_schema()
VALIDATOR = jsonschema_rs.validator_for(SCHEMA)
#: Every message the API gives for a field starts with one of these (French, no Pydantic text).
FRENCH = (
    "doit être",
    "doit contenir",
    "valeur non autorisée ; valeurs possibles",
    "champ obligatoire manquant",
    "champ inconnu",
)


@pytest.fixture(scope="module")
def predictor(database: Database, model_version: str) -> Predictor:
    """The active model, compiled as the API serves it."""
    with database.owner_engine().connect() as c:
        artifact, sha = c.execute(
            text("SELECT artifact, artifact_sha256 FROM model_versions WHERE version = :v"),
            {"v": model_version},
        ).one()
    return load_predictor(load_pipeline(bytes(artifact), sha))


def parse(document: Any) -> PredictionRequest:
    """What the API does with a body: JSON text in, Pydantic model out."""
    return PredictionRequest.model_validate_json(json.dumps(document))


@PROPERTY
@given(profiles=st.lists(valid_profiles(), min_size=1, max_size=12))
def test_any_valid_profile_is_accepted_and_scored(
    profiles: list[dict[str, Any]], predictor: Predictor, figures: Figures
) -> None:
    features = [parse(p).features() for p in profiles]
    for row in features:
        assert coherence_errors(row) == []
        for f in FEATURES:
            if f.kind == "int":
                assert type(row[f.name]) is int, f.name  # 3087.0 arrives as 3087
    together = predictor.predict_proba(columns_from_records(features))
    assert together.shape == (len(features),)
    assert np.all(np.isfinite(together)) and np.all((together >= 0) & (together <= 1))
    alone = [float(predictor.predict_proba(columns_from_records([row]))[0]) for row in features]
    assert np.allclose(together, alone, rtol=0, atol=1e-12)  # a batch changes nobody's score
    figures.add("proprietes", "profils_valides", len(features))


def invalid_values(name: str) -> st.SearchStrategy[Any]:
    """Values outside the domain of one field, whatever the other fields are."""
    f = FEATURES_BY_NAME[name]
    wrong_type = st.one_of(
        st.none(), st.text(max_size=8), st.lists(st.integers(), max_size=2), st.just({})
    )
    if f.kind == "category" and not f.required:
        wrong_type = wrong_type.filter(lambda v: v is not None)  # null: "not given", accepted
    if f.kind == "category":
        return st.one_of(
            wrong_type.filter(lambda v: v not in f.categories),
            st.integers(),
            st.booleans(),
            st.sampled_from([c.lower() for c in f.categories] + [f" {c}" for c in f.categories]),
        ).filter(lambda v: v not in f.categories)
    if f.kind == "bool":
        return st.one_of(wrong_type, st.integers(0, 1), st.sampled_from(["true", "Oui", "1"]))
    assert f.low is not None and f.high is not None
    low, high = f.low, f.high
    out_of_range = st.one_of(
        st.integers(int(high) + 1, int(high) + 10**6), st.integers(int(low) - 10**6, int(low) - 1)
    )
    strings = st.integers(int(low), int(high)).map(str)  # "34"
    if f.kind == "int":
        halves = st.integers(int(low), int(high) - 1).map(lambda n: n + 0.5)
        return st.one_of(wrong_type, st.booleans(), out_of_range, strings, halves)
    return st.one_of(wrong_type, st.booleans(), out_of_range, strings, out_of_range.map(float))


@st.composite
def single_mutations(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid profile with exactly one field wrong, missing or added; and that field's name."""
    profile = draw(valid_profiles())
    kind = draw(st.sampled_from(["value", "value", "value", "missing", "extra"]))
    if kind == "extra":
        name = draw(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20))
        if name in profile or name == "id_employee":
            name = f"{name}_inconnu"
        return {**profile, name: draw(json_values)}, name
    if kind == "missing":
        # Only the model's inputs are required; genre and statut_marital may be left out.
        name = draw(st.sampled_from(MODEL_INPUTS))
        return {k: v for k, v in profile.items() if k != name}, name
    name = draw(st.sampled_from(FEATURE_NAMES))
    return {**profile, name: draw(invalid_values(name))}, name


@PROPERTY
@given(case=single_mutations())
def test_any_single_field_out_of_domain_is_refused_and_named(
    case: tuple[dict[str, Any], str], figures: Figures
) -> None:
    document, name = case
    with pytest.raises(ValidationError) as refused:
        parse(document)
    errors = translate(refused.value.errors())
    assert {e["champ"] for e in errors} == {name}, errors
    assert all(e["message"].startswith(FRENCH) for e in errors), errors
    figures.add("proprietes", "mutations_refusees")


@st.composite
def near_valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid profile with up to three fields replaced by any JSON value, or dropped."""
    document: dict[str, Any] = draw(valid_profiles())
    for name in draw(st.sets(st.sampled_from([*FEATURE_NAMES, "id_employee"]), max_size=3)):
        if draw(st.booleans()) and name != "id_employee":
            document.pop(name)
        else:
            document[name] = draw(json_values)
    if draw(st.booleans()):
        document["id_employee"] = draw(st.one_of(st.none(), st.integers(-5, 2**31 + 5)))
    return document


@PROPERTY
@given(document=near_valid_documents())
def test_json_schema_and_pydantic_agree(document: dict[str, Any], figures: Figures) -> None:
    schema_valid = VALIDATOR.is_valid(document)
    if schema_valid:
        # The rules JSON Schema cannot state are made to hold (see the module docstring).
        document = coherent(document)
        assert VALIDATOR.is_valid(document)
    try:
        parse(document)
        accepted = True
    except ValidationError as exc:
        accepted = False
        reasons = exc.errors()
    assert accepted == schema_valid, (document, None if accepted else reasons)
    figures.add("proprietes", "documents_json_compares")
    figures.add("proprietes", "documents_json_valides", int(schema_valid))


def test_documented_example_and_edge_numbers() -> None:
    """The cases the properties are about, spelled out."""
    assert VALIDATOR.is_valid(EXAMPLE_EMPLOYEE)
    assert parse({**EXAMPLE_EMPLOYEE, "revenu_mensuel": 3087.0}).revenu_mensuel == 3087
    for wrong in ("34", True, 3087.5, None):
        document = {**EXAMPLE_EMPLOYEE, "revenu_mensuel": wrong}
        assert not VALIDATOR.is_valid(document)
        with pytest.raises(ValidationError):
            parse(document)
    for wrong in ("34", True):  # id_employee was lax before this test existed
        document = {**EXAMPLE_EMPLOYEE, "id_employee": wrong}
        assert not VALIDATOR.is_valid(document)
        with pytest.raises(ValidationError):
            parse(document)
    assert math.isclose(
        parse({**EXAMPLE_EMPLOYEE, "augmentation_salaire_precedente": 11}).features()[
            "augmentation_salaire_precedente"
        ],
        11.0,
    )


@settings(max_examples=max(10, EXAMPLES // 10), deadline=None, derandomize=True)
@given(case=single_mutations())
def test_the_api_refuses_them_the_same_way(
    case: tuple[dict[str, Any], str],
    client: TestClient,
    keys: Keys,
    database: Database,
) -> None:
    document, name = case
    r = client.post("/v1/predictions", json=document, headers=auth(keys.predicteur))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert name in {e["champ"] for e in r.json()["errors"]}
    with database.owner_engine().connect() as c:
        written = c.scalar(
            text("SELECT count(*) FROM prediction_inputs WHERE request_id = :r"),
            {"r": r.headers["x-request-id"]},
        )
    assert written == 0
