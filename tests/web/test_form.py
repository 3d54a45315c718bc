"""The prediction form: help said once, numbers the browser checks, optional fields."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition import wording
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.data import vocabulary as voc
from attrition.db.engine import Database
from tests.helpers import People
from tests.web.test_pages import csrf, form_of, sign_in

HELP = re.compile(r'<p class="help" id="h-([a-z_]+)">(.*?)</p>', re.S)
BOUND = re.compile(r'\b(min|max)="([^"]*)"')


def test_form_help_is_said_once_and_bounds_are_machine_numbers(
    web: TestClient,
    people: People,
) -> None:
    sign_in(web, people.predicteur)
    page = web.get("/app/prediction").text
    assert "ceux de l'API" not in page
    helps = {name: html.unescape(body) for name, body in HELP.findall(page)}
    for name, body in helps.items():
        if name not in voc.FEATURES_BY_NAME:
            continue
        label = voc.FEATURES_BY_NAME[name].label
        assert body.strip(), name
        assert not body.lower().startswith(label.lower()), (name, body)
        assert len(re.findall(r"de \d", body, re.I)) <= 1, (name, body)
    assert 'aria-describedby="h-departement' not in page  # no help, no dangling reference
    for _attr, value in BOUND.findall(page):
        assert re.fullmatch(r"-?\d+(\.\d+)?", value), value
    assert 'max="50000"' in page
    for name in voc.NOT_MODEL_INPUTS:
        select = re.search(rf'<select id="f-{name}"[^>]*>', page)
        assert select is not None and "required" not in select.group(0)
    assert '<select id="f-poste" name="poste" required' in page


def test_form_without_unused_fields_is_scored_and_not_stored(
    web: TestClient,
    people: People,
    database: Database,
) -> None:
    sign_in(web, people.predicteur)
    token = csrf(web, "/app/prediction")
    data = {**form_of(EXAMPLE_EMPLOYEE), "csrf": token, "genre": "", "statut_marital": ""}
    r = web.post("/app/prediction", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    prediction_id = int(r.headers["location"].rstrip("/").split("/")[-1])
    with database.owner_engine().connect() as conn:
        row = conn.execute(
            text(
                "SELECT i.genre, i.statut_marital, i.payload ? 'genre' FROM predictions p "
                "JOIN prediction_inputs i ON i.id = p.input_id WHERE p.id = :id"
            ),
            {"id": prediction_id},
        ).one()
    assert tuple(row) == (None, None, False)


def test_result_and_history_read_the_score_with_the_threshold(
    web: TestClient,
    people: People,
) -> None:
    sign_in(web, people.predicteur)
    token = csrf(web, "/app/prediction")
    r = web.post(
        "/app/prediction",
        data={**form_of(EXAMPLE_EMPLOYEE), "csrf": token},
        follow_redirects=False,
    )
    page = html.unescape(web.get(r.headers["location"]).text)
    assert "probable" not in page
    assert "seuil d'alerte" in page
    assert any(label in page for label in wording.RISK_LABELS.values())
    reading = re.search(r'data-testid="lecture">(.*?)</p>', page, re.S)
    assert reading is not None and "Probabilité estimée de départ" in reading.group(1)
    history = html.unescape(web.get("/app/historique").text)
    assert "probable" not in history
    assert wording.DECISION_LABELS["depart"] in history
