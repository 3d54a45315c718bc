"""Reliability fixtures: the figures collector and an in-process app with its own keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from attrition.api.app import create_app
from attrition.config import Settings
from attrition.db.engine import Database
from tests.reliability.figures import Figures


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    """What the reliability tests measured; merged into reports/fiabilite.json at the end."""
    collected = Figures()
    yield collected
    if collected.sections or collected.faults:
        collected.merge_into()


@pytest.fixture(scope="session")
def app_client(database: Database, settings: Settings, model_version: str) -> Iterator[TestClient]:
    """The app in process (its own instance: the reliability tests do not share api's)."""
    app = create_app(settings, database=database)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
