"""The front door: a browser finds the web interface, an API client finds its way."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from attrition import __version__
from attrition.api.routers.index import wants_html

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.mark.parametrize("accept", [BROWSER, "text/html", "application/xhtml+xml;q=0.5"])
def test_a_browser_is_sent_to_the_web_interface(client: TestClient, accept: str) -> None:
    r = client.get("/", headers={"Accept": accept}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app"
    assert client.head("/", headers={"Accept": accept}, follow_redirects=False).status_code == 303
    page = client.get("/", headers={"Accept": accept})
    assert page.url.path == "/app/connexion" and "Connexion" in page.text


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html;q=0"])
def test_an_api_client_gets_the_index(client: TestClient, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    r = client.get("/", headers=headers, follow_redirects=False)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["version"] == __version__
    links = body["liens"]
    assert {k: links[k] for k in ("interface", "api", "sante", "documentation")} == {
        "interface": "/app",
        "api": "/v1",
        "sante": "/health",
        "documentation": "/docs",
    }
    for path in links.values():
        target = client.get(path, headers={"Accept": "application/json"}, follow_redirects=False)
        assert target.status_code in (200, 303), path


def test_the_api_index_lists_the_resources(client: TestClient) -> None:
    r = client.get("/v1")
    assert r.status_code == 200
    resources = {item["chemin"]: item["methodes"] for item in r.json()["ressources"]}
    assert resources["/v1/predictions"] == ["GET", "POST"]
    assert "/v1/keys" in resources and "/v1/model" in resources
    assert all(path.startswith("/v1/") for path in resources)


def test_accept_header_parsing() -> None:
    assert wants_html(BROWSER) and wants_html("TEXT/HTML; charset=utf-8")
    assert not wants_html("") and not wants_html("*/*") and not wants_html("text/html;q=0")
    assert wants_html("text/html;level=1")
