"""Monitoring fixtures: the API's TestClient."""

from __future__ import annotations

from tests.api.conftest import client  # noqa: F401
