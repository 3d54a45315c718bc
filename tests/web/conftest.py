"""Web fixtures: one account per role, and a real uvicorn server for the browser tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient

from attrition.api.app import create_app
from attrition.config import Settings
from attrition.db.engine import Database
from tests.helpers import People, create_person


@pytest.fixture(scope="session")
def people(database: Database) -> People:
    return People(
        admin=create_person(database, "web-admin", "admin"),
        predicteur=create_person(database, "web-predicteur", "predicteur"),
        autre_predicteur=create_person(database, "web-predicteur-2", "predicteur"),
        auditeur=create_person(database, "web-auditeur", "auditeur"),
    )


@pytest.fixture
def web(client: TestClient) -> Iterator[TestClient]:
    """The shared TestClient with an empty cookie jar (one browser session per test), on the
    loopback address as `make run` serves it (elsewhere the cookie is ``Secure``)."""
    base_url = client.base_url
    client.base_url = "http://127.0.0.1"  # type: ignore[assignment]
    client.cookies.clear()
    yield client
    client.cookies.clear()
    client.base_url = base_url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(database: Database, settings: Settings, model_version: str) -> Iterator[str]:
    """The application served by uvicorn on 127.0.0.1 (a free port), in a thread."""
    app = create_app(settings, database=database)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-web-tests", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the uvicorn test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
