"""A single prediction's answer is prepared while PostgreSQL writes its record.

Its body holds two values only the database gives (the prediction's id and its time); the
rest (probability, decision, reading, explanation) is rendered in the window where the
process would otherwise wait for the COMMIT, and the two values are set in afterwards. The
bytes must be those of the body rendered after the COMMIT, and the answer still leaves only
once the record is durable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from attrition.api.app import create_app
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import Settings
from attrition.db.engine import Database
from attrition.db.writer import GroupCommitWriter
from attrition.services import predictions
from attrition.services.answers import SingleBody
from attrition.services.predictions import Outcome
from tests.helpers import Keys, auth

EXPLANATION = {
    "valeur_de_base": -2.5,
    "logit": -1.25,
    "facteurs_hausse": [
        {"variable": "age", "libelle": "Âge", "valeur": 31.0, "contribution": 0.125}
    ],
    "facteurs_baisse": [],
}


def _outcome(prediction_id: int, created_at: datetime, **changes: Any) -> Outcome:
    fields: dict[str, Any] = {
        "prediction_id": prediction_id,
        "probability": 0.3141592653589793,
        "label": "reste",
        "threshold": 0.35,
        "risk_level": "moyen",
        "explanation": EXPLANATION,
        "model_version": "v1",
        "id_employee": None,
        "created_at": created_at,
    }
    return Outcome(**{**fields, **changes})


@pytest.mark.parametrize(
    "created_at",
    [
        datetime(2026, 11, 30, 17, 10, 55, 344085, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),  # no microseconds: none written
        datetime(2026, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
    ],
)
@pytest.mark.parametrize("prediction_id", [1, 987_654_321_012])
def test_the_early_body_is_byte_for_byte_the_late_one(
    created_at: datetime, prediction_id: int
) -> None:
    late = _outcome(prediction_id, created_at, id_employee=42)
    early = SingleBody().template(_outcome(0, datetime(1970, 1, 1, tzinfo=UTC), id_employee=42))
    assert early.body(prediction_id, created_at) == orjson.dumps(
        late.as_response(), option=orjson.OPT_SERIALIZE_NUMPY
    )


def test_the_answer_is_rendered_before_the_write_returns_and_sent_after_it(
    database: Database,
    settings: Settings,
    keys: Keys,
    model_version: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []
    as_response = Outcome.as_response

    def watched(self: Outcome) -> dict[str, Any]:
        events.append("rendered")
        return as_response(self)

    monkeypatch.setattr(predictions.Outcome, "as_response", watched)
    app = create_app(settings, database=database)
    with TestClient(app) as client:
        assert app.state.service.writer is not None
        write = GroupCommitWriter.write

        async def traced(self: GroupCommitWriter, *args: Any, **kwargs: Any) -> Any:
            events.append("write")
            try:
                return await write(self, *args, **kwargs)
            finally:
                events.append("committed")

        monkeypatch.setattr(GroupCommitWriter, "write", traced)
        answered = client.post(
            "/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur)
        )
    assert answered.status_code == 201, answered.text
    # Rendered while the statement was in flight, not after its COMMIT.
    assert events == ["write", "rendered", "committed"]
    body = answered.json()
    assert body["prediction_id"] > 0
    assert datetime.fromisoformat(body["horodatage"]).tzinfo is not None
    keys = list(body)
    assert (keys[0], keys[-1]) == ("prediction_id", "horodatage")
