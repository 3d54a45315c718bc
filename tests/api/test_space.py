"""What the Hugging Face Space needs from the app (issue 19): `/`, HEAD probes, framing, version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from attrition import __version__
from attrition.api.app import create_app
from attrition.config import Settings
from attrition.db.engine import Database

SPACE_ORIGIN = "https://huggingface.co"


@pytest.fixture(scope="module")
def framed(database: Database, settings: Settings, model_version: str) -> Iterator[TestClient]:
    """The app as deployed on a Space: its pages may be framed by the Space's page only."""
    space = settings.model_copy(
        update={"api": settings.api.model_copy(update={"frame_ancestors": [SPACE_ORIGIN]})}
    )
    with TestClient(create_app(space, database=database), raise_server_exceptions=False) as c:
        yield c


def test_health_reports_the_version_and_persistence(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["statut"] == "ok"
    assert body["version"] == __version__
    assert body["base_persistante"] is True
    assert body["avertissement"] is None


@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_head_probes_answer_200_without_a_body(client: TestClient, path: str) -> None:
    response = client.head(path)
    assert response.status_code == 200
    assert response.content == b""


def test_other_methods_on_health_list_what_is_allowed(client: TestClient) -> None:
    response = client.delete("/health")
    assert response.status_code == 405
    assert {"GET", "HEAD"} <= {m.strip() for m in response.headers["allow"].split(",")}


def test_root_redirects_browsers_to_the_pages(client: TestClient) -> None:
    response = client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303  # the front door (api/routers/index.py)
    assert response.headers["location"] == "/app"


def test_root_gives_api_clients_an_index(client: TestClient) -> None:
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == __version__
    assert body["liens"]["interface"] == "/app"
    assert body["liens"]["sante"] == "/health"
    assert client.head("/").status_code == 200


def test_nothing_is_framable_by_default(client: TestClient) -> None:
    for path in ("/app/connexion", "/health", "/"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        assert response.headers["x-frame-options"] == "DENY", path


def test_space_origin_may_frame_the_pages_only(framed: TestClient) -> None:
    page = framed.get("/app/connexion")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert f"frame-ancestors {SPACE_ORIGIN}" in csp
    assert "'none'" not in csp.split("frame-ancestors", 1)[1]
    assert "x-frame-options" not in page.headers
    # A framed page's session cookie must still reach the server: SameSite=None, partitioned.
    cookie = page.headers["set-cookie"].lower()
    assert "samesite=none" in cookie and "secure" in cookie and "partitioned" in cookie
    for path in ("/health", "/ready", "/v1/model"):
        api = framed.get(path)
        assert "frame-ancestors 'none'" in api.headers["content-security-policy"], path
        assert api.headers["x-frame-options"] == "DENY", path


def test_strict_cookie_when_not_framed(
    database: Database, settings: Settings, model_version: str
) -> None:
    with TestClient(create_app(settings, database=database)) as fresh:
        cookie = fresh.get("/app/connexion").headers["set-cookie"].lower()
    assert "samesite=strict" in cookie and "partitioned" not in cookie
