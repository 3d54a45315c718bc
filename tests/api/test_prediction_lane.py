"""The prediction lane: the plain ``POST /v1/predictions`` without FastAPI's dispatch.

Two things are pinned. The plain case (a valid body and a key) is served by the lane: FastAPI
solves no dependency for it. And every answer is the one FastAPI gives: the same requests,
sent to an app with the lane and to one without (``api.fast_lane``), get the same status,
the same body and the same headers, apart from the ids and clocks that differ by nature.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fastapi.routing
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url, text

from attrition.api.app import create_app
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import Settings
from attrition.db.engine import Database
from attrition.security.store import create_key
from tests.helpers import Keys, auth, orphan_inputs

#: Values that differ between two answers by nature: ids, clocks.
VARYING_FIELDS = {"prediction_id", "horodatage", "request_id"}
VARYING_HEADERS = {"x-request-id", "x-server-request-id", "date", "ratelimit-reset"}


def _lane_settings(settings: Settings, on: bool, **api: Any) -> Settings:
    return settings.model_copy(
        update={"api": settings.api.model_copy(update={"fast_lane": on, **api})}
    )


@pytest.fixture(scope="module")
def pair(
    database: Database, settings: Settings, model_version: str
) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps on the same database: with the lane, and without it."""
    with (
        TestClient(
            create_app(_lane_settings(settings, True), database=database),
            raise_server_exceptions=False,
        ) as lane,
        TestClient(
            create_app(_lane_settings(settings, False), database=database),
            raise_server_exceptions=False,
        ) as plain,
    ):
        yield lane, plain


def _normalised(response: Any) -> tuple[int, Any, dict[str, str]]:
    try:
        body = response.json()
    except ValueError:
        body = response.text

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in VARYING_FIELDS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    headers = {
        name: ("*" if name in VARYING_HEADERS or name == "content-length" else value)
        for name, value in response.headers.items()
    }
    return response.status_code, strip(body), headers


def _same(pair: tuple[TestClient, TestClient], method: str, url: str, **kwargs: Any) -> Any:
    lane, plain = pair
    got = lane.request(method, url, **kwargs)
    expected = plain.request(method, url, **kwargs)
    assert _normalised(got) == _normalised(expected)
    return got


def test_plain_prediction_is_served_without_fastapi_dispatch(
    pair: tuple[TestClient, TestClient], keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    lane, plain = pair
    solved: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await original(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    r = lane.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
    assert r.status_code == 201, r.text
    assert solved == []
    # The same request without the lane goes through FastAPI, as does anything unusual.
    assert (
        plain.post(
            "/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur)
        ).status_code
        == 201
    )
    assert solved == ["/v1/predictions"]
    bad = lane.post(
        "/v1/predictions", json={**EXAMPLE_EMPLOYEE, "age": 7}, headers=auth(keys.predicteur)
    )
    assert bad.status_code == 422
    assert solved == ["/v1/predictions"] * 2


CASES: list[tuple[str, dict[str, Any]]] = [
    ("valid", {"json": EXAMPLE_EMPLOYEE}),
    ("x-api-key", {"json": EXAMPLE_EMPLOYEE, "key_header": "X-API-Key"}),
    ("client request id", {"json": EXAMPLE_EMPLOYEE, "headers": {"X-Request-ID": "abc.42"}}),
    ("minimal body", {"json": {k: v for k, v in EXAMPLE_EMPLOYEE.items() if k != "id_employee"}}),
    ("out of range", {"json": {**EXAMPLE_EMPLOYEE, "age": 7}}),
    ("unknown field", {"json": {**EXAMPLE_EMPLOYEE, "couleur": "bleu"}}),
    ("missing field", {"json": {k: v for k, v in EXAMPLE_EMPLOYEE.items() if k != "age"}}),
    ("not an object", {"json": [EXAMPLE_EMPLOYEE]}),
    ("malformed json", {"content": b'{"age": 41,', "ctype": True}),
    ("empty body", {"content": b"", "ctype": True}),
    ("unknown query", {"json": EXAMPLE_EMPLOYEE, "params": {"curseur": "1"}}),
    ("bad idempotency key", {"json": EXAMPLE_EMPLOYEE, "headers": {"Idempotency-Key": "a b"}}),
    ("long idempotency key", {"json": EXAMPLE_EMPLOYEE, "headers": {"Idempotency-Key": "k" * 256}}),
    ("no key", {"json": EXAMPLE_EMPLOYEE, "key": None}),
    ("wrong key", {"json": EXAMPLE_EMPLOYEE, "key": "ftr_notakey"}),
    ("wrong key, bad body", {"json": {**EXAMPLE_EMPLOYEE, "age": 7}, "key": "ftr_notakey"}),
    ("wrong role", {"json": EXAMPLE_EMPLOYEE, "key": "auditeur"}),
    ("wrong role, bad body", {"json": {**EXAMPLE_EMPLOYEE, "age": 7}, "key": "auditeur"}),
]


@pytest.mark.parametrize(("case", "spec"), CASES, ids=[c for c, _ in CASES])
def test_every_answer_is_fastapis(
    pair: tuple[TestClient, TestClient], keys: Keys, case: str, spec: dict[str, Any]
) -> None:
    key = spec.get("key", keys.predicteur)
    if key == "auditeur":
        key = keys.auditeur
    headers = dict(spec.get("headers", {}))
    if key is not None:
        if spec.get("key_header") == "X-API-Key":
            headers["X-API-Key"] = key
        else:
            headers.update(auth(key))
    kwargs: dict[str, Any] = {"headers": headers, "params": spec.get("params")}
    if "json" in spec:
        kwargs["json"] = spec["json"]
    else:
        kwargs["content"] = spec["content"]
        headers["Content-Type"] = "application/json"
    _same(pair, "POST", "/v1/predictions", **kwargs)


def test_idempotent_replay_and_conflict_are_fastapis(
    pair: tuple[TestClient, TestClient], keys: Keys
) -> None:
    lane, plain = pair
    for client, name in ((lane, "lane"), (plain, "plain")):
        headers = {**auth(keys.predicteur), "Idempotency-Key": f"lane-test-{name}"}
        first = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
        again = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
        other = client.post(
            "/v1/predictions", json={**EXAMPLE_EMPLOYEE, "age": 42}, headers=headers
        )
        assert first.status_code == 201
        assert again.json()["prediction_id"] == first.json()["prediction_id"]
        assert again.headers["idempotent-replayed"] == "true"
        assert other.status_code in (409, 422)
        if name == "lane":
            answers = [_normalised(r) for r in (first, again, other)]
        else:
            assert [_normalised(r) for r in (first, again, other)] == answers


def test_per_minute_quota_refusal_is_fastapis(
    database: Database, settings: Settings, model_version: str
) -> None:
    answers = []
    for on in (True, False):
        tight = _lane_settings(settings, on, predictions_per_minute=1)
        key = create_key(database, settings, name=f"lane-quota-{on}", role="predicteur").key
        with TestClient(create_app(tight, database=database)) as client:
            ok = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(key))
            refused = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(key))
        assert (ok.status_code, refused.status_code) == (201, 429)
        answers.append([_normalised(ok), _normalised(refused)])
    assert answers[0] == answers[1]


def test_unreachable_database_answer_is_fastapis(
    settings: Settings, database: Database, keys: Keys
) -> None:
    closed = make_url("postgresql+psycopg://attrition_app:x@127.0.0.1:9/attrition")
    down = Database(owner_url=database.owner_url, app_url=closed)
    with database.owner_engine().connect() as c:
        before = c.scalar(text("SELECT count(*) FROM prediction_inputs"))
    answers = []
    for on in (True, False):
        fast = _lane_settings(settings, on).model_copy(
            update={
                "db": settings.db.model_copy(update={"pool_timeout_s": 0.5, "connect_timeout_s": 1})
            }
        )
        with TestClient(create_app(fast, database=down), raise_server_exceptions=False) as client:
            r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
        assert r.status_code == 503
        answers.append(_normalised(r))
    assert answers[0] == answers[1]
    with database.owner_engine().connect() as c:
        assert c.scalar(text("SELECT count(*) FROM prediction_inputs")) == before
    assert orphan_inputs(database) == 0
