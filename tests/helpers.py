"""Helpers the tests share (plain functions and types; the fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text

from attrition.db.engine import Database
from attrition.model.compiled import CompiledLinearModel
from attrition.model.runtime import LoadedModel
from attrition.security.passwords import hash_password
from attrition.services.accounts import AccountService, connect_to

#: The audit key of the test session (set in the environment by conftest's settings fixture).
TEST_AUDIT_KEY = "test-audit-key-0123456789abcdefghijklmnopqrstuvwxyz"  # pragma: allowlist secret


@dataclass(frozen=True)
class Keys:
    admin: str
    predicteur: str
    autre_predicteur: str
    auditeur: str


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def owner_count(database: Database, sql: str, **params: object) -> int:
    """One integer read as the database owner (0 for NULL)."""
    with database.owner_engine().connect() as c:
        return int(c.scalar(text(sql), params) or 0)


def orphan_inputs(database: Database) -> int:
    """Recorded inputs without their output: always 0 (one statement writes both)."""
    return owner_count(
        database,
        "SELECT count(*) FROM prediction_inputs i "
        "LEFT JOIN predictions p ON p.input_id = i.id WHERE p.id IS NULL",
    )


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


def loaded_model(compiled: CompiledLinearModel) -> LoadedModel:
    """A registry-free ``LoadedModel`` around ``compiled`` (threshold 0.5), for model tests."""
    return LoadedModel(
        id=1,
        version="v1",
        algorithm="regression_logistique",
        threshold=0.5,
        threshold_criterion="f2",
        metrics={},
        sha256="0" * 64,
        created_at=datetime.now(UTC),
        compiled=compiled,
    )


def used_today(database: Database, *, key_id: str | None = None, name: str | None = None) -> int:
    """A key's count of the day's predictions (``usage_counters``), by key id or key name."""
    column, value = ("key_id", key_id) if key_id is not None else ("name", name)
    with database.owner_engine().connect() as conn:
        used = conn.scalar(
            text(
                "SELECT u.used FROM usage_counters u JOIN api_keys k ON u.key = 'key:' || k.id "
                f"WHERE k.{column} = :value AND u.day = (now() AT TIME ZONE 'UTC')::date"
            ),
            {"value": value},
        )
    return int(used or 0)
