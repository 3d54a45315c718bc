"""Fixtures of the database tests."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from attrition.db.engine import Database


@pytest.fixture(scope="module")
def model_id(database: Database, model_version: str) -> int:
    with database.owner_engine().connect() as conn:
        return int(conn.scalar(text("SELECT id FROM model_versions WHERE is_active")))
