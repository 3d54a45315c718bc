"""Web fixtures: the API's TestClient fixtures, and a real uvicorn server for the browser."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import uvicorn

from attrition.api.app import create_app
from attrition.config import Settings
from attrition.db.engine import Database
from attrition.security.passwords import hash_password
from attrition.services.accounts import AccountService, connect_to
from tests.api.conftest import client  # noqa: F401  (the API's TestClient, reused here)

#: The password every test person signs in with (it obeys the CNIL rule).
PASSWORD = "Mot-de-passe-Test-42"  # pragma: allowlist secret


@dataclass(frozen=True)
class Person:
    login: str
    password: str = PASSWORD

    @property
    def audit_name(self) -> str:
        """The name of the person's audit identity in ``api_keys``."""
        return f"compte:{self.login}"


@dataclass(frozen=True)
class People:
    admin: Person
    predicteur: Person
    autre_predicteur: Person
    auditeur: Person


def create_person(database: Database, login: str, role: str, *, ready: bool = True) -> Person:
    """An account; ``ready``: with the known password already chosen (no one-time password)."""
    service = AccountService(connect_to(database.owner_conninfo))
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        issued = pool.submit(asyncio.run, service.create_user(login, role)).result()
    if not ready:
        return Person(login=issued.login, password=issued.password)
    with database.connect() as conn:
        conn.execute(
            "UPDATE users SET password_hash = %s, must_change_password = false, "
            "password_changed_at = now() WHERE login = %s",
            (hash_password(PASSWORD), issued.login),
        )
    return Person(login=issued.login)


@pytest.fixture(scope="session")
def people(database: Database) -> People:
    return People(
        admin=create_person(database, "web-admin", "admin"),
        predicteur=create_person(database, "web-predicteur", "predicteur"),
        autre_predicteur=create_person(database, "web-predicteur-2", "predicteur"),
        auditeur=create_person(database, "web-auditeur", "auditeur"),
    )


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
