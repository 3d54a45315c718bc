"""Failed web sign-ins are limited per address too, without locking other addresses out."""

from __future__ import annotations

import html
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.db.engine import Database
from attrition.security.limits import bucket
from tests.helpers import Person, create_person
from tests.web.test_pages import sign_in

ATTACKER = ("198.51.100.7", 40000)
NEIGHBOUR = ("203.0.113.9", 40001)


def browser(web: TestClient, address: tuple[str, int]) -> TestClient:
    return TestClient(web.app, base_url="http://127.0.0.1", client=address)


def failed_attempts(database: Database, login: str) -> int:
    with database.owner_engine().connect() as c:
        return int(
            c.execute(
                text("SELECT failed_attempts FROM users WHERE login = :l"), {"l": login}
            ).scalar_one()
        )


@pytest.fixture
def small_limit(web: TestClient) -> Iterator[None]:
    """A real limiter of the same kind as the server's, with a small budget for the test:
    3 failures per minute and per address (the session's settings allow many more)."""
    state = web.app.state  # type: ignore[attr-defined]
    kept = state.sign_in_limit
    state.sign_in_limit = bucket(f"test-{uuid.uuid4().hex}", 3)
    try:
        yield
    finally:
        state.sign_in_limit = kept


@pytest.mark.usefixtures("small_limit")
def test_failures_from_one_address_are_limited_there_only(
    web: TestClient, database: Database
) -> None:
    suffix = uuid.uuid4().hex[:6]
    victim = create_person(database, f"cible-{suffix}", "predicteur")
    neighbour = create_person(database, f"voisin-{suffix}", "predicteur")
    attacker = browser(web, ATTACKER)
    # One guess on each of three accounts: the per-account throttle never triggers.
    for login in (f"compte-a-{suffix}", f"compte-b-{suffix}", victim.login):
        r = sign_in(attacker, Person(login=login), "mauvais-mot-de-passe")
        assert r.status_code == 401, r.text
    assert failed_attempts(database, victim.login) == 1

    blocked = sign_in(attacker, victim)  # even the right password: the address is spent
    assert blocked.status_code == 429
    assert "Trop d'échecs de connexion depuis cette adresse" in html.unescape(blocked.text)
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert failed_attempts(database, victim.login) == 1  # refused before any check
    with database.owner_engine().connect() as c:
        recorded = c.execute(
            text(
                "SELECT count(*) FROM rejected_requests WHERE status = 429 "
                "AND route = '/app/connexion' AND errors::text LIKE :m"
            ),
            {"m": "%depuis cette adresse%"},
        ).scalar_one()
    assert recorded >= 1

    # Another address is not affected: its people sign in, the victim too.
    other = browser(web, NEIGHBOUR)
    assert sign_in(other, neighbour).status_code == 303
    other.cookies.clear()
    assert sign_in(other, victim).status_code == 303
