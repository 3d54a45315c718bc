"""The front door: a browser finds the web interface, an API client finds its way."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from attrition import __version__
from attrition.api.routers.index import banner, wants_html

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


def test_the_banner_gives_the_three_addresses() -> None:
    lines = banner("127.0.0.1", 8000, guide=True)
    assert lines == [
        "Interface web (équipes RH) : http://127.0.0.1:8000/app",
        "Documentation de l'API (Swagger UI) : http://127.0.0.1:8000/docs",
        "Site de documentation : http://127.0.0.1:8000/guide/",
    ]
    unbuilt = banner("0.0.0.0", 9000, docs=False, guide=False)
    assert unbuilt[0] == "Interface web (équipes RH) : http://127.0.0.1:9000/app"
    assert len(unbuilt) == 2 and "make docs" in unbuilt[1]
    assert banner("::1", 8000, guide=True)[0].endswith("http://[::1]:8000/app")


def test_the_built_docs_site_is_served_under_guide(tmp_path: Path) -> None:
    from fastapi import FastAPI

    from attrition.api.routers import index

    (tmp_path / "index.html").write_text("<h1>Guide</h1>", encoding="utf-8")
    app = FastAPI()
    original = index.SITE_DIR
    index.SITE_DIR = tmp_path
    try:
        assert index.install_guide(app)
    finally:
        index.SITE_DIR = original
    with TestClient(app) as guide:
        assert "<h1>Guide</h1>" in guide.get("/guide/").text
    index.SITE_DIR = tmp_path / "absent"
    try:
        assert not index.install_guide(FastAPI())
    finally:
        index.SITE_DIR = original
