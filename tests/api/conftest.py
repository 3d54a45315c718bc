"""API fixtures: a registered model, one key per role, and a running app (TestClient)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from attrition.api.app import create_app
from attrition.config import Settings
from attrition.db.engine import Database
from tests.conftest import Keys, auth  # noqa: F401


@pytest.fixture(scope="session")
def client(database: Database, settings: Settings, model_version: str) -> Iterator[TestClient]:
    app = create_app(settings, database=database)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
