"""JSON bodies: orjson for valid JSON, the standard parser for what only it accepts."""

from __future__ import annotations

import json

import orjson
import pytest
from fastapi.testclient import TestClient

from attrition.api.routing import FastJSONRequest
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from tests.helpers import Keys, auth


def _request(body: bytes) -> FastJSONRequest:
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:  # pragma: no cover - the body is read once
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return FastJSONRequest({"type": "http", "method": "POST", "headers": []}, receive)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": 1, "b": [1.5, true, null, "\\u00e9"]}', {"a": 1, "b": [1.5, True, None, "é"]}),
        (b'{"x": NaN}', "nan"),  # not JSON: the standard parser still reads it
    ],
)
async def test_json_parses_like_the_standard_library(body: bytes, expected: object) -> None:
    parsed = await _request(body).json()
    if expected == "nan":
        assert parsed["x"] != parsed["x"]
    else:
        assert parsed == expected == json.loads(body)


@pytest.mark.anyio
async def test_integer_beyond_64_bits_becomes_a_float() -> None:
    # orjson's documented behaviour; every integer field is bounded far below 2**63, so such
    # a value is refused with its field's range error either way (next tests).
    parsed = await _request(b'{"n": 123456789012345678901234567890}').json()
    assert parsed == {"n": 1.2345678901234568e29}


@pytest.mark.anyio
async def test_malformed_json_raises_the_standard_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        await _request(b'{"age": 41,}').json()


def test_huge_integer_is_refused_with_its_field(client: TestClient, keys: Keys) -> None:
    body = orjson.dumps({**EXAMPLE_EMPLOYEE, "age": 0}).replace(
        b'"age":0', b'"age":123456789012345678901234567890'
    )
    r = client.post(
        "/v1/predictions",
        content=body,
        headers={**auth(keys.predicteur), "content-type": "application/json"},
    )
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert [e["champ"] for e in errors] == ["age"]
    assert "JSON invalide" not in errors[0]["message"]


@pytest.mark.parametrize(
    "path", ["/v1/predictions", "/v1/predictions/batch", "/v1/employees/1/predictions"]
)
def test_prediction_routes_check_key_and_role_before_the_body(
    client: TestClient, keys: Keys, path: str
) -> None:
    """One dependency checks key and role (the hot path): the same answers as ``require``."""
    bad = {"content-type": "application/json"}
    missing = client.post(path, content=b"{", headers=bad)
    assert missing.status_code == 401
    assert "Clé API manquante" in missing.json()["detail"]
    wrong = client.post(path, content=b"{", headers={**bad, **auth("ftr_nope.nope")})
    assert wrong.status_code == 401
    body = {"employes": [EXAMPLE_EMPLOYEE]} if path.endswith("batch") else EXAMPLE_EMPLOYEE
    denied = client.post(path, json=body, headers=auth(keys.auditeur))
    assert denied.status_code == 403
    assert "« auditeur »" in denied.json()["detail"]
    assert "predicteur, admin" in denied.json()["detail"]


def test_prediction_routes_keep_their_security_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/predictions",
        "/v1/predictions/batch",
        "/v1/employees/{id_employee}/predictions",
    ):
        assert paths[path]["post"]["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]


def test_prediction_routes_share_no_path_with_other_routes(client: TestClient) -> None:
    """Routing tries the prediction routes first (api/app.py): that may change no choice.

    A route is chosen by the first full match (or the first partial one, for a 405): moving
    the prediction routes ahead changes nothing only if no other route matches their paths,
    and they match no other route's path.
    """
    from starlette.routing import Match

    from attrition.api.problems import leaf_routes
    from attrition.api.routers import predictions

    hot = list(predictions.router.routes)
    others = [r for r in leaf_routes(client.app.router.routes) if r not in hot]  # type: ignore[attr-defined]
    assert len(hot) == 5 and len(others) > 20

    def sample(route: object) -> dict[str, object]:
        path = getattr(route, "path", "/")
        for name in getattr(route, "param_convertors", {}):
            path = path.replace("{" + name + "}", "1").replace("{" + name + ":int}", "1")
        return {"type": "http", "path": path, "root_path": "", "method": "GET", "headers": []}

    for first, second in ((hot, others), (others, hot)):
        for route in first:
            scope = sample(route)
            clashes = [r for r in second if r.matches(scope)[0] is not Match.NONE]
            assert clashes == [], (scope["path"], [getattr(r, "path", r) for r in clashes])
    # And they are tried first: POST /v1/predictions is matched by the first route of all.
    scope = {**sample(hot[0]), "method": "POST"}
    assert client.app.router.routes[0].matches(scope)[0] is Match.FULL  # type: ignore[attr-defined]
