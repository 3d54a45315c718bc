"""A one-prediction answer rendered while PostgreSQL writes its record.

Of the body of ``POST /v1/predictions`` only the prediction's id and its time come from the
database; the rest (probability, decision, reading, explanation) is known once the model has
answered. :class:`SingleBody` renders it in the window where the process waits for the
COMMIT (:meth:`attrition.services.predictions.PredictionService._record_grouped`), and
:class:`Template` sets the two values in afterwards: the bytes are those the whole dict
would render to (tests/services/test_early_answer.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from attrition.db.audit import Written


class Answered(Protocol):
    """What a body is rendered from (:class:`attrition.services.predictions.Outcome`)."""

    def as_response(self) -> dict[str, Any]: ...


#: As the API's JSON responses (attrition.api.responses.FastJSONResponse) render a body.
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
#: The id and time a body is rendered with before the database gives them (then replaced).
NOT_YET = Written(0, 0, datetime(1970, 1, 1, tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class Template:
    """A one-prediction body rendered before its id and time are known (:class:`SingleBody`).

    ``middle`` is the JSON of every field between ``prediction_id`` (the first) and
    ``horodatage`` (the last): :meth:`body` gives the bytes the whole dict would render to.
    """

    middle: bytes

    def body(self, prediction_id: int, created_at: datetime) -> bytes:
        return b'{"prediction_id":%d,%s,"horodatage":%s}' % (
            prediction_id,
            self.middle,
            orjson.dumps(created_at, option=_JSON_OPTIONS),
        )


class SingleBody:
    """The body of a one-prediction answer, ``outcomes[0].as_response()``.

    The service may render it while PostgreSQL writes the record (:meth:`template`): of its
    fields only the id and the time come from the database. At concurrency 1 the process
    otherwise waits for the COMMIT, then renders; this takes that rendering off the answer's
    critical path (docs/performance.md).
    """

    def __call__(self, outcomes: Sequence[Answered]) -> dict[str, Any]:
        return outcomes[0].as_response()

    def template(self, outcome: Answered) -> Template:
        fields = outcome.as_response()
        keys = list(fields)
        if keys[0] != "prediction_id" or keys[-1] != "horodatage":  # pragma: no cover
            raise ValueError("the body no longer starts with its id and ends with its time")
        del fields["prediction_id"], fields["horodatage"]
        return Template(orjson.dumps(fields, option=_JSON_OPTIONS)[1:-1])
