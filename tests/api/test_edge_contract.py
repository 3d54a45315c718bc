"""What the HTTP layer promises on the prediction path, pinned before it was made cheaper.

Each response of the API carries the same edge headers (request ids, security headers), no
session cookie; the pages under /app keep theirs; refusals before routing (413, 415) and
validation (422) keep their problem bodies; the key is read from either header, in the same
way as FastAPI's security classes.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from tests.helpers import Keys, auth

EDGE_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
}


def _edge(response_headers: dict[str, str]) -> dict[str, str]:
    return {name: response_headers.get(name, "") for name in EDGE_HEADERS}


def test_prediction_response_headers_and_no_session_cookie(client: TestClient, keys: Keys) -> None:
    r = client.post(
        "/v1/predictions",
        json=EXAMPLE_EMPLOYEE,
        headers={**auth(keys.predicteur), "X-Request-ID": "client-id.42"},
    )
    assert r.status_code == 201, r.text
    assert _edge(dict(r.headers)) == EDGE_HEADERS
    assert r.headers["x-request-id"] == "client-id.42"
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-server-request-id"])
    assert r.headers["content-type"] == "application/json"
    assert "set-cookie" not in r.headers
    assert "strict-transport-security" not in r.headers
    # A malformed client id is not echoed: the server's id is.
    bad_id = client.post(
        "/v1/predictions",
        json=EXAMPLE_EMPLOYEE,
        headers={**auth(keys.predicteur), "X-Request-ID": "no spaces allowed"},
    )
    assert bad_id.headers["x-request-id"] == bad_id.headers["x-server-request-id"]
    # Two requests never share the server's id.
    assert bad_id.headers["x-server-request-id"] != r.headers["x-server-request-id"]


def test_pages_keep_their_session_cookie_and_page_headers(client: TestClient) -> None:
    page = client.get("/app/connexion")
    assert page.status_code == 200
    cookie = page.headers["set-cookie"].lower()
    assert cookie.startswith("attrition_session=") and "path=/app" in cookie
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-request-id"] == page.headers["x-server-request-id"]
    # Outside /app, no session layer: no cookie, even for a page-like path.
    for path in ("/health", "/application", "/v1/model"):
        assert "set-cookie" not in client.get(path).headers, path


def test_oversized_body_problem(client: TestClient, keys: Keys) -> None:
    big = client.post(
        "/v1/predictions",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={**auth(keys.predicteur), "content-type": "application/json"},
    )
    assert big.status_code == 413
    assert big.headers["content-type"] == "application/problem+json"
    assert _edge(dict(big.headers)) == EDGE_HEADERS
    body = big.json()
    assert body["title"] == "Requête trop volumineuse"
    assert body["status"] == 413 and body["instance"] == "/v1/predictions"
    assert body["request_id"] == big.headers["x-server-request-id"]
    assert body["errors"][0]["champ"] == "corps"
    assert "octets" in body["detail"]

    def chunks() -> object:  # no Content-Length: counted as it is read
        yield b"{"
        for _ in range(40):
            yield b" " * 65_536
        yield b"}"

    streamed = client.post(
        "/v1/predictions",
        content=chunks(),  # type: ignore[arg-type]
        headers={**auth(keys.predicteur), "content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["title"] == "Requête trop volumineuse"


def test_unsupported_type_problem(client: TestClient, keys: Keys) -> None:
    wrong = client.post(
        "/v1/predictions",
        content=b"age=41",
        headers={**auth(keys.predicteur), "content-type": "text/plain"},
    )
    assert wrong.status_code == 415
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.json()["title"] == "Type de contenu non pris en charge"


def test_validation_problem(client: TestClient, keys: Keys) -> None:
    r = client.post(
        "/v1/predictions",
        json={**EXAMPLE_EMPLOYEE, "age": "contrat-du-bord"},
        headers=auth(keys.predicteur),
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert _edge(dict(r.headers)) == EDGE_HEADERS
    body = r.json()
    assert body["status"] == 422 and body["request_id"] == r.headers["x-server-request-id"]
    assert body["errors"][0]["champ"] == "age"
    assert body["detail"].startswith("Entrée invalide : age")
    unknown = client.post(
        "/v1/predictions?curseur=1", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur)
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["champ"] == "curseur"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": "bearer {key}"}, 201),
        ({"Authorization": "BEARER {key}"}, 201),
        ({"X-API-Key": "{key}"}, 201),
        # A Bearer header that is not a key of this service wins over a valid X-API-Key.
        ({"Authorization": "Bearer ftr_nope", "X-API-Key": "{key}"}, 401),
        # A header that is not Bearer is ignored: the X-API-Key is used.
        ({"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": "{key}"}, 201),
    ],
)
def test_key_headers(client: TestClient, keys: Keys, headers: dict[str, str], status: int) -> None:
    sent = {name: value.format(key=keys.predicteur) for name, value in headers.items()}
    r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=sent)
    assert r.status_code == status, r.text
    if status == 401:
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 401


def test_server_request_ids_are_random_uuid4() -> None:
    import uuid

    from attrition.api.middleware import new_request_id

    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for value in list(ids)[:200]:
        parsed = uuid.UUID(hex=value)
        assert parsed.hex == value and len(value) == 32
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
