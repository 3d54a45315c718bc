"""Helpers the tests share (plain functions and types; the fixtures are in conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from attrition.db.engine import Database

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


def orphan_inputs(database: Database) -> int:
    """Recorded inputs without their output: always 0 (one statement writes both)."""
    with database.owner_engine().connect() as c:
        return int(
            c.scalar(
                text(
                    "SELECT count(*) FROM prediction_inputs i "
                    "LEFT JOIN predictions p ON p.input_id = i.id WHERE p.id IS NULL"
                )
            )
            or 0
        )
