"""Model activation reaches the running API; a tampered artifact is never served."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.db.engine import Database
from attrition.model import registry
from attrition.model.final import fit_final
from attrition.model.pipeline import frame_fingerprint, read_training_frame, register_trained
from tests.helpers import Keys, auth


def _refresh(client: TestClient) -> None:
    app = client.app

    async def go() -> None:
        async with app.state.pool.connection() as conn:  # type: ignore[attr-defined]
            await app.state.runtime.refresh(conn, force=True)  # type: ignore[attr-defined]

    client.portal.call(go)  # type: ignore[union-attr]


def test_activation_switches_the_served_version(
    client: TestClient, keys: Keys, database: Database, model_version: str
) -> None:
    frame = read_training_frame(database)
    other = register_trained(
        database,
        fit_final(frame, "regression_logistique", 11),
        frame_fingerprint(frame),
        activate=False,
    )
    try:
        with Session(database.owner_engine()) as s, s.begin():
            registry.activate_version(s, other)
        _refresh(client)
        r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
        assert r.json()["model_version"] == other
        with database.owner_engine().connect() as c:
            assert c.scalar(text("SELECT count(*) FROM model_versions WHERE is_active")) == 1
    finally:
        with Session(database.owner_engine()) as s, s.begin():
            registry.activate_version(s, model_version)
        _refresh(client)
    r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
    assert r.json()["model_version"] == model_version


def test_tampered_artifact_is_refused_then_rollback_restores(
    client: TestClient, keys: Keys, database: Database, model_version: str
) -> None:
    frame = read_training_frame(database)
    bad = register_trained(
        database,
        fit_final(frame, "regression_logistique", 13),
        frame_fingerprint(frame),
        activate=False,
    )
    with database.owner_engine().begin() as c:
        c.execute(
            text(
                "UPDATE model_versions SET artifact = overlay(artifact placing '\\x00'::bytea "
                "from 200 for 1) WHERE version = :v"
            ),
            {"v": bad},
        )
    try:
        with Session(database.owner_engine()) as s, s.begin():
            registry.activate_version(s, bad)
        _refresh(client)
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "refusé" in ready.json()["raison"]
        r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
        assert r.status_code == 503
        assert r.headers["retry-after"]
    finally:
        with Session(database.owner_engine()) as s, s.begin():
            registry.activate_version(s, model_version)
        _refresh(client)
    assert client.get("/ready").status_code == 200
    _ = asyncio


def test_serving_state_scores_like_the_pipeline_and_is_checked(
    client: TestClient, keys: Keys, database: Database, model_version: str
) -> None:
    import numpy as np

    from attrition.model.artifact import load_pipeline
    from attrition.model.calibration import Calibration
    from attrition.model.compiled import CompiledLinearModel
    from attrition.model.features import columns_from_records, to_model_frame
    from attrition.model.summary import summary_metrics  # noqa: F401  (light module)

    frame = read_training_frame(database)
    with database.owner_engine().connect() as c:
        artifact, sha, state = c.execute(
            text(
                "SELECT artifact, artifact_sha256, serving_state FROM model_versions "
                "WHERE version = :v"
            ),
            {"v": model_version},
        ).one()
    pipeline = load_pipeline(bytes(artifact), sha)
    served = CompiledLinearModel.from_state(state)
    records = frame.to_dict(orient="records")
    # The served probability is the pipeline's through the version's recalibration map.
    assert state["calibration"] is not None
    calibration = Calibration.from_state(state["calibration"])
    expected = calibration.apply(pipeline.predict_proba(to_model_frame(frame))[:, 1])
    got = served.predict_proba(columns_from_records(records))
    assert np.max(np.abs(got - expected)) < 1e-12

    # Rewriting the stored weights (even consistently formatted) is refused at load.
    with database.owner_engine().begin() as c:
        c.execute(
            text(
                "UPDATE model_versions SET serving_state = jsonb_set(serving_state, "
                "'{intercept}', to_jsonb((serving_state->>'intercept')::float8 + 1)) "
                "WHERE version = :v"
            ),
            {"v": model_version},
        )
    try:
        _refresh_force_reload(client)
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "poids compilés" in ready.json()["raison"]
    finally:
        with database.owner_engine().begin() as c:
            c.execute(
                text(
                    "UPDATE model_versions SET serving_state = CAST(:s AS jsonb) WHERE version = :v"
                ),
                {"s": __import__("json").dumps(state), "v": model_version},
            )
        _refresh_force_reload(client)
    assert client.get("/ready").status_code == 200


def _refresh_force_reload(client: TestClient) -> None:
    app = client.app

    async def go() -> None:
        runtime = app.state.runtime  # type: ignore[attr-defined]
        runtime.current = None  # same version id: force a reload from the registry
        async with app.state.pool.connection() as conn:  # type: ignore[attr-defined]
            await runtime.refresh(conn, force=True)

    client.portal.call(go)  # type: ignore[union-attr]


def test_registry_refuses_a_model_the_service_cannot_explain(database: Database) -> None:
    """A gradient-boosting recipe has no exact explanation here: refused, nothing written."""
    import pytest

    from attrition.errors import ValidationError
    from attrition.model.calibration import NONE

    frame = read_training_frame(database)
    trained = fit_final(frame, "gradient_boosting", 7, calibration=NONE)
    with database.owner_engine().connect() as c:
        before = c.scalar(text("SELECT count(*) FROM model_versions"))
    with pytest.raises(ValidationError) as refused:
        register_trained(database, trained, frame_fingerprint(frame), activate=True)
    message = refused.value.message
    assert "gradient_boosting" in message
    assert "explication" in message and "régression logistique" in message
    with database.owner_engine().connect() as c:
        assert c.scalar(text("SELECT count(*) FROM model_versions")) == before
