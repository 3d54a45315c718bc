"""Outcomes fed back by HR, and the realized-performance report built from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import Settings
from attrition.db.engine import Database
from attrition.security.store import create_key
from tests.helpers import Keys, auth


@pytest.fixture(scope="module")
def rh_key(database: Database, settings: Settings) -> str:
    return create_key(database, settings, name="test-rh", role="rh").key


@pytest.fixture(scope="module")
def employee(database: Database) -> int:
    """An employee of the dataset that no other test predicts for."""
    with database.owner_engine().connect() as c:
        return int(c.scalar(text("SELECT max(id_employee) FROM employees")))


def _issue(client: TestClient, key: str, employee: int, **body: Any) -> Any:
    return client.post(f"/v1/employees/{employee}/issue", json=body, headers=auth(key))


def _version(client: TestClient, keys: Keys, version: str) -> dict[str, Any]:
    r = client.get("/v1/monitoring/performance", headers=auth(keys.auditeur))
    assert r.status_code == 200, r.text
    found = [v for v in r.json()["versions"] if v["model_version"] == version]
    return found[0] if found else {"predictions": 0, "resolues": 0, "departs": 0}


def test_outcome_is_validated_and_recorded_once(
    client: TestClient, keys: Keys, rh_key: str, database: Database, employee: int
) -> None:
    today = datetime.now(UTC).date()
    future = _issue(client, rh_key, employee, statut="present", date=str(today + timedelta(days=2)))
    assert future.status_code == 422
    assert future.json()["errors"][0]["champ"] == "date"
    unknown_status = _issue(client, rh_key, employee, statut="licencie", date=str(today))
    assert unknown_status.status_code == 422 and "statut" in unknown_status.text
    nobody = _issue(client, rh_key, 2_000_000_000, statut="present", date=str(today))
    assert nobody.status_code == 404 and "inconnu" in nobody.json()["detail"]
    forbidden = _issue(client, keys.predicteur, employee, statut="present", date=str(today))
    assert forbidden.status_code == 403

    when = str(today - timedelta(days=400))
    first = _issue(client, rh_key, employee, statut="present", date=when)
    assert first.status_code == 201, first.text
    assert first.json()["deja_enregistre"] is False and first.json()["source"] == "api"
    again = _issue(client, rh_key, employee, statut="present", date=when)
    assert again.status_code == 200 and again.json()["deja_enregistre"] is True
    with database.owner_engine().connect() as c:
        rows = c.scalar(
            text(
                "SELECT count(*) FROM employee_outcomes WHERE id_employee = :e AND statut = 'present'"
            ),
            {"e": employee},
        )
    assert rows == 1


def test_recorded_departure_appears_in_realized_performance(
    client: TestClient,
    keys: Keys,
    rh_key: str,
    employee: int,
    model_version: str,
    settings: Settings,
) -> None:
    before = _version(client, keys, model_version)
    r = client.post(
        "/v1/predictions",
        json={**EXAMPLE_EMPLOYEE, "id_employee": employee},
        headers=auth(keys.predicteur),
    )
    assert r.status_code == 201, r.text
    flagged = r.json()["prediction"] == "depart"
    scored = _version(client, keys, model_version)
    assert scored["predictions"] == before["predictions"] + 1
    assert scored["resolues"] == before["resolues"]  # pending: nothing known yet

    today = str(datetime.now(UTC).date())
    assert _issue(client, rh_key, employee, statut="parti", date=today).status_code == 201
    after = _version(client, keys, model_version)
    assert after["resolues"] == before["resolues"] + 1
    assert after["departs"] == before["departs"] + 1
    assert after["vrais_positifs"] == before.get("vrais_positifs", 0) + int(flagged)
    assert after["statut"] == "donnees_insuffisantes"

    metrics = client.get("/metrics").text
    assert (
        f'attrition_realized_resolved{{replica="{settings.replica}",version="{model_version}"}} '
        f"{after['resolues']}.0" in metrics
    )
