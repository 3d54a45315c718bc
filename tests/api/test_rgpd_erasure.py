"""GDPR access and erasure: everything about one person exported; erased, the trail verifies.

The test works on an employee of its own (a copy of employee 1 under a new id), so that
the shared dataset is unchanged for the other tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.cli import app as cli
from attrition.config import get_settings
from attrition.db.engine import Database
from tests.helpers import Keys, auth

PERSON = 99_001


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, database: Database) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", database.owner_url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def person(database: Database) -> int:
    with database.owner_engine().begin() as c:
        for table, fix in (
            ("employees", ""),
            ("performance_reviews", ", eval_number = 'E_' || :i"),
            ("survey_responses", ", code_sondage = CAST(:i AS text)"),
        ):
            c.execute(
                text(f"CREATE TEMP TABLE copy ON COMMIT DROP AS SELECT * FROM {table} "
                     "WHERE id_employee = 1")
            )  # fmt: skip
            c.execute(text(f"UPDATE copy SET id_employee = :i{fix}"), {"i": PERSON})
            c.execute(text(f"INSERT INTO {table} SELECT * FROM copy"))
            c.execute(text("DROP TABLE copy"))
    return PERSON


def test_export_then_erase_one_person_keeps_the_trail_verifiable(
    client: TestClient, keys: Keys, runner: CliRunner, database: Database, person: int
) -> None:
    stored = client.post(f"/v1/employees/{person}/predictions", headers=auth(keys.predicteur))
    assert stored.status_code == 201, stored.text
    sent = client.post(
        "/v1/predictions",
        json={**EXAMPLE_EMPLOYEE, "id_employee": person},
        headers=auth(keys.predicteur),
    )
    assert sent.status_code == 201, sent.text
    refused = client.post(
        "/v1/predictions",
        json={**EXAMPLE_EMPLOYEE, "id_employee": person, "age": "quarante"},
        headers=auth(keys.predicteur),
    )
    assert refused.status_code == 422
    ids = {stored.json()["prediction_id"], sent.json()["prediction_id"]}

    exported = runner.invoke(cli, ["rgpd", "export", "--employee-id", str(person)])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)
    assert {p["prediction_id"] for p in data["predictions"]} == ids
    assert data["dossier"]["id_employee"] == person
    excerpts = [r["extrait"] for r in data["requetes_refusees"]]
    assert any("quarante" in (e or "") for e in excerpts), data["requetes_refusees"]

    erased = runner.invoke(cli, ["rgpd", "erase", "--employee-id", str(person), "--yes"])
    assert erased.exit_code == 0, erased.output
    assert "2 prédiction(s)" in erased.output

    verified = runner.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "Chaîne intacte" in verified.output and "effacée" in verified.output
    with database.owner_engine().connect() as c:
        left = c.execute(
            text(
                "SELECT (SELECT count(*) FROM prediction_inputs WHERE id_employee = :i), "
                "(SELECT count(*) FROM predictions WHERE id = ANY(:ids)), "
                "(SELECT count(*) FROM employees WHERE id_employee = :i), "
                "(SELECT count(*) FROM rejected_requests WHERE payload_excerpt LIKE '%quarante%'), "
                "(SELECT count(*) FROM audit_chain WHERE prediction_id = ANY(:ids)), "
                "(SELECT count(*) FROM erasure_log WHERE prediction_id = ANY(:ids))"
            ),
            {"i": person, "ids": sorted(ids)},
        ).one()
    # Nothing readable is left; the links and the signed erasure records stay.
    assert tuple(left) == (0, 0, 0, 0, 2, 2)
    again = runner.invoke(cli, ["rgpd", "export", "--employee-id", str(person)])
    assert again.exit_code == 1 and "Aucune donnée" in again.output


def test_an_erasure_record_forged_by_the_owner_is_caught(
    client: TestClient, keys: Keys, runner: CliRunner, database: Database
) -> None:
    r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
    pid = r.json()["prediction_id"]
    assert runner.invoke(cli, ["audit", "seal"]).exit_code == 0
    with database.owner_engine().connect() as c:
        c.execute(text("CREATE TEMP TABLE saved_p AS SELECT * FROM predictions WHERE id = :i"),
                  {"i": pid})  # fmt: skip
        c.execute(
            text(
                "CREATE TEMP TABLE saved_i AS SELECT * FROM prediction_inputs "
                "WHERE id = (SELECT input_id FROM saved_p)"
            )
        )
        c.execute(text("SET attrition.allow_purge = 'on'"))
        c.execute(text("DELETE FROM predictions WHERE id = :i"), {"i": pid})
        c.execute(text("DELETE FROM prediction_inputs WHERE id = (SELECT id FROM saved_i)"))
        # Without the audit key, the owner can only write an unverifiable erasure record.
        c.execute(
            text(
                "INSERT INTO erasure_log (prediction_id, record_mac, mac) "
                "SELECT id, record_mac, repeat('0', 64) FROM saved_p"
            )
        )
        c.commit()
        try:
            result = runner.invoke(cli, ["audit", "verify"])
            assert result.exit_code == 2, result.output
            out = " ".join(result.output.split())
            assert f"prédiction {pid} (lien n°" in out and "enregistrement supprimé" in out
        finally:
            c.execute(text("DELETE FROM erasure_log WHERE prediction_id = :i"), {"i": pid})
            c.execute(text("INSERT INTO prediction_inputs SELECT * FROM saved_i"))
            c.execute(text("INSERT INTO predictions SELECT * FROM saved_p"))
            c.execute(text("DELETE FROM audit_pending WHERE prediction_id = :i"), {"i": pid})
            c.execute(text("RESET attrition.allow_purge"))
            c.execute(text("DROP TABLE saved_p, saved_i"))
            c.commit()
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0
