"""The web pages with the database unreachable: the API's 503 at once, nothing recorded."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from attrition.api.app import create_app
from attrition.config import Settings
from attrition.db.engine import Database
from tests.helpers import PASSWORD

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def test_sign_in_with_the_database_down_is_a_503_page_and_records_nothing(
    settings: Settings, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Like the API, the web does not try to record the refusal when the database is the fault.

    Recording would fail too, after waiting for a connection, and delay the 503 page.
    """
    closed = make_url("postgresql+psycopg://attrition_app:x@127.0.0.1:9/attrition")
    down = Database(owner_url=database.owner_url, app_url=closed)
    fast = settings.model_copy(
        update={
            "db": settings.db.model_copy(update={"pool_timeout_s": 0.5, "connect_timeout_s": 1})
        }
    )
    app = create_app(fast, database=down)
    # On the loopback address, as `make run` serves it (elsewhere the cookie is Secure).
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        match = CSRF.search(client.get("/app/connexion").text)
        assert match is not None
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            r = client.post(
                "/app/connexion",
                data={"login": "web-predicteur", "mot_de_passe": PASSWORD, "csrf": match[1]},
            )
    assert r.status_code == 503
    assert r.headers["retry-after"] == "2"
    assert "indisponible" in r.text
    assert [
        rec.getMessage() for rec in caplog.records if "non enregistrée" in rec.getMessage()
    ] == []
