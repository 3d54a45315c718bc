"""Prediction endpoints through HTTP, checking the response AND the rows written."""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.db.engine import Database
from attrition.model.calibration import Calibration
from attrition.model.features import to_model_frame
from attrition.model.pipeline import read_training_frame
from tests.helpers import Keys, auth


def count(db: Database, sql: str, **params: Any) -> int:
    with db.owner_engine().connect() as c:
        return int(c.scalar(text(sql), params) or 0)


def test_health_and_readiness(client: TestClient, model_version: str) -> None:
    health = client.get("/health").json()
    assert health["statut"] == "ok" and health["base_persistante"] is True
    ready = client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["statut"] == "pret"
    assert body["modele"] == model_version
    assert body["base_de_donnees"]


def test_prediction_is_returned_and_recorded_once(
    client: TestClient, keys: Keys, database: Database, model_version: str
) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    r = client.post(
        "/v1/predictions",
        json={**EXAMPLE_EMPLOYEE, "id_employee": 1},
        headers={**auth(keys.predicteur), "X-Request-ID": request_id},
    )
    assert r.status_code == 201, r.text
    assert r.headers["x-request-id"] == request_id
    body = r.json()
    assert 0 <= body["probabilite_depart"] <= 1
    assert body["prediction"] == (
        "depart" if body["probabilite_depart"] >= body["seuil"] else "reste"
    )
    assert body["niveau_risque"] in {"faible", "moyen", "eleve"}
    assert body["model_version"] == model_version
    assert body["id_employee"] == 1
    expl = body["explication"]
    assert expl["facteurs_hausse"] and all(f["contribution"] > 0 for f in expl["facteurs_hausse"])
    assert all(f["contribution"] < 0 for f in expl["facteurs_baisse"])
    # The probability is the linear model's, through the version's recalibration map; the
    # logit and its factors stay those of the linear model.
    calibration = _active_calibration(database)
    raw = 1 / (1 + math.exp(-expl["logit"]))
    assert math.isclose(
        float(calibration.apply(np.array([raw]))[0]), body["probabilite_depart"], rel_tol=1e-9
    )
    with database.owner_engine().connect() as c:
        rows = c.execute(
            text(
                "SELECT i.id_employee, i.age, i.poste, i.source, p.probability, p.label "
                "FROM prediction_inputs i JOIN predictions p ON p.input_id = i.id "
                "WHERE i.client_request_id = :r"
            ),
            {"r": request_id},
        ).all()
    assert len(rows) == 1
    assert rows[0][:4] == (1, 41, "Cadre Commercial", "api")
    assert rows[0][4] == pytest.approx(body["probabilite_depart"], abs=1e-12)
    assert rows[0][5] == body["prediction"]
    recorded = client.get(f"/v1/predictions/{body['prediction_id']}", headers=auth(keys.predicteur))
    assert recorded.status_code == 200
    assert recorded.json()["entree"]["poste"] == "Cadre Commercial"
    assert recorded.json()["client_request_id"] == request_id
    assert recorded.json()["request_id"] == r.headers["x-server-request-id"]


def test_invalid_payload_is_refused_named_and_traced_without_prediction(
    client: TestClient, keys: Keys, database: Database
) -> None:
    before = count(database, "SELECT count(*) FROM prediction_inputs")
    request_id = f"bad-{uuid.uuid4().hex}"
    r = client.post(
        "/v1/predictions",
        json={**EXAMPLE_EMPLOYEE, "age": 12, "genre": "X"},
        headers={**auth(keys.predicteur), "X-Request-ID": request_id},
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    fields = {e["champ"]: e["message"] for e in problem["errors"]}
    assert fields["age"] == "doit être supérieur ou égal à 16"
    assert "valeurs possibles" in fields["genre"] and "'F'" in fields["genre"]
    assert problem["detail"].startswith("Entrée invalide : age")
    assert count(database, "SELECT count(*) FROM prediction_inputs") == before
    assert (
        count(
            database,
            "SELECT count(*) FROM rejected_requests WHERE client_request_id = :r AND status = 422 "
            "AND route = '/v1/predictions'",
            r=request_id,
        )
        == 1
    )


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"annees_dans_l_entreprise": 9}, "annees_dans_l_entreprise", "dépasse"),
        ({"age": "41"}, "age", "doit être un nombre entier"),
        ({"age": True}, "age", "doit être un nombre entier"),
        ({"revenu_mensuel": 5993.5}, "revenu_mensuel", "doit être un nombre entier"),
        ({"heures_supplementaires": "Oui"}, "heures_supplementaires", "booléen"),
        ({"salaire_secret": 1}, "salaire_secret", "champ inconnu"),
        ({"poste": "Stagiaire"}, "poste", "valeurs possibles"),
    ],
)
def test_schema_rules(
    client: TestClient, keys: Keys, change: dict[str, Any], field: str, message: str
) -> None:
    r = client.post(
        "/v1/predictions", json={**EXAMPLE_EMPLOYEE, **change}, headers=auth(keys.predicteur)
    )
    assert r.status_code == 422
    errors = {e["champ"]: e["message"] for e in r.json()["errors"]}
    assert message in errors[field]


def test_integral_float_is_an_integer(client: TestClient, keys: Keys) -> None:
    r = client.post(
        "/v1/predictions",
        json={**EXAMPLE_EMPLOYEE, "revenu_mensuel": 5993.0},
        headers=auth(keys.predicteur),
    )
    assert r.status_code == 201


def test_batch_is_scored_and_recorded_whole(
    client: TestClient, keys: Keys, database: Database
) -> None:
    request_id = f"batch-{uuid.uuid4().hex}"
    employees = [
        EXAMPLE_EMPLOYEE,
        {**EXAMPLE_EMPLOYEE, "heures_supplementaires": False},
        EXAMPLE_EMPLOYEE,
    ]
    r = client.post(
        "/v1/predictions/batch",
        json={"employes": employees},
        headers={**auth(keys.predicteur), "X-Request-ID": request_id},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["nombre"] == 3
    probs = [p["probabilite_depart"] for p in body["predictions"]]
    assert probs[0] == pytest.approx(probs[2], abs=1e-15)
    assert probs[1] < probs[0]  # no overtime lowers the risk
    assert (
        count(
            database,
            "SELECT count(*) FROM prediction_inputs i JOIN predictions p ON p.input_id = i.id "
            "WHERE i.client_request_id = :r AND i.source = 'batch'",
            r=request_id,
        )
        == 3
    )


def test_batch_with_one_bad_row_writes_nothing(
    client: TestClient, keys: Keys, database: Database
) -> None:
    before = count(database, "SELECT count(*) FROM prediction_inputs")
    r = client.post(
        "/v1/predictions/batch",
        json={"employes": [EXAMPLE_EMPLOYEE, {**EXAMPLE_EMPLOYEE, "age": 99}]},
        headers=auth(keys.predicteur),
    )
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"champ": "age", "message": "doit être inférieur ou égal à 70", "ligne": 1}
    ]
    assert count(database, "SELECT count(*) FROM prediction_inputs") == before


def test_batch_limits(client: TestClient, keys: Keys) -> None:
    empty = client.post(
        "/v1/predictions/batch", json={"employes": []}, headers=auth(keys.predicteur)
    )
    assert empty.status_code == 422
    assert "au moins 1" in empty.json()["errors"][0]["message"]


def test_stored_employee_prediction(client: TestClient, keys: Keys, database: Database) -> None:
    r = client.post("/v1/employees/2/predictions", headers=auth(keys.predicteur))
    assert r.status_code == 201, r.text
    pid = r.json()["prediction_id"]
    source, id_employee = (
        database.owner_engine()
        .connect()
        .execute(
            text(
                "SELECT i.source, i.id_employee FROM predictions p JOIN prediction_inputs i "
                "ON i.id = p.input_id WHERE p.id = :p"
            ),
            {"p": pid},
        )
        .one()
    )
    assert (source, id_employee) == ("employee", 2)
    missing = client.post("/v1/employees/3/predictions", headers=auth(keys.predicteur))
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Employé 3 inconnu : aucun dossier enregistré."


def test_unknown_id_employee_in_body_is_404(client: TestClient, keys: Keys) -> None:
    r = client.post(
        "/v1/predictions",
        json={**EXAMPLE_EMPLOYEE, "id_employee": 3},
        headers=auth(keys.predicteur),
    )
    assert r.status_code == 404


def test_serving_matches_training_on_stored_employees(
    client: TestClient, keys: Keys, database: Database
) -> None:
    frame = read_training_frame(database)
    from attrition.model.runtime import ModelRuntime  # noqa: F401  (same loader as the API)

    app_runtime = client.app.state.runtime  # type: ignore[attr-defined]
    pipeline_probs = None
    from attrition.model.artifact import load_pipeline

    with database.owner_engine().connect() as c:
        artifact, sha = c.execute(
            text("SELECT artifact, artifact_sha256 FROM model_versions WHERE is_active")
        ).one()
    pipeline = load_pipeline(bytes(artifact), sha)
    sample = frame.iloc[:40]
    raw_probs = pipeline.predict_proba(to_model_frame(sample))[:, 1]
    pipeline_probs = _active_calibration(database).apply(raw_probs)
    r = client.post(
        "/v1/predictions/batch",
        json={
            "employes": [
                {k: v for k, v in row.items() if k in EXAMPLE_EMPLOYEE}
                for row in sample.to_dict(orient="records")
            ]
        },
        headers=auth(keys.predicteur),
    )
    assert r.status_code == 201, r.text
    api_probs = np.array([p["probabilite_depart"] for p in r.json()["predictions"]])
    assert np.max(np.abs(api_probs - pipeline_probs)) < 1e-9
    assert app_runtime.ready


def test_allowed_categories_are_the_trained_ones(client: TestClient, keys: Keys) -> None:
    from attrition.model.features import CATEGORIES

    model = client.get("/v1/model", headers=auth(keys.auditeur)).json()
    api_domains = {v["nom"]: set(v["valeurs"]) for v in model["variables"] if v["valeurs"]}
    for name, categories in CATEGORIES.items():
        if name in api_domains:
            assert set(categories) == api_domains[name]


def test_model_endpoint_describes_the_active_version(
    client: TestClient, keys: Keys, model_version: str
) -> None:
    body = client.get("/v1/model", headers=auth(keys.predicteur)).json()
    assert body["version"] == model_version
    assert 0 < body["seuil"] < 1
    assert len(body["variables"]) == 27
    assert len(body["sha256"]) == 64


def test_list_is_paginated_by_cursor_and_filtered(client: TestClient, keys: Keys) -> None:
    for _ in range(3):
        client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.autre_predicteur))
    first = client.get("/v1/predictions?limite=2", headers=auth(keys.autre_predicteur)).json()
    assert len(first["predictions"]) == 2
    assert first["curseur_suivant"]
    second = client.get(
        f"/v1/predictions?limite=2&curseur={first['curseur_suivant']}",
        headers=auth(keys.autre_predicteur),
    ).json()
    ids = [p["prediction_id"] for p in first["predictions"] + second["predictions"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    bad = client.get("/v1/predictions?curseur=abc", headers=auth(keys.predicteur))
    assert bad.status_code == 422
    too_big = client.get("/v1/predictions?limite=1000", headers=auth(keys.predicteur))
    assert too_big.status_code == 422
    only_leavers = client.get(
        "/v1/predictions?prediction=depart", headers=auth(keys.auditeur)
    ).json()
    assert all(p["prediction"] == "depart" for p in only_leavers["predictions"])


def test_employees_endpoints(client: TestClient, keys: Keys) -> None:
    page = client.get("/v1/employees?limite=3", headers=auth(keys.auditeur)).json()
    assert [e["id_employee"] for e in page["employes"]] == [1, 2, 4]
    nxt = client.get(
        f"/v1/employees?limite=3&curseur={page['curseur_suivant']}", headers=auth(keys.auditeur)
    )
    assert nxt.json()["employes"][0]["id_employee"] > 4
    one = client.get("/v1/employees/1", headers=auth(keys.auditeur)).json()
    assert one["age"] == 41 and one["a_quitte_l_entreprise"] is True
    assert client.get("/v1/employees/3", headers=auth(keys.auditeur)).status_code == 404


def test_body_size_and_content_type(client: TestClient, keys: Keys) -> None:
    big = client.post(
        "/v1/predictions",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={**auth(keys.predicteur), "content-type": "application/json"},
    )
    assert big.status_code == 413
    wrong = client.post(
        "/v1/predictions",
        content=b"age=41",
        headers={**auth(keys.predicteur), "content-type": "text/plain"},
    )
    assert wrong.status_code == 415
    malformed = client.post(
        "/v1/predictions",
        content=b"{not json",
        headers={**auth(keys.predicteur), "content-type": "application/json"},
    )
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["message"].startswith("JSON invalide")


def test_security_headers(client: TestClient) -> None:
    r = client.get("/health")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "x-request-id" in r.headers


def _active_calibration(database: Database) -> Calibration:
    with database.owner_engine().connect() as c:
        state = c.scalar(text("SELECT serving_state FROM model_versions WHERE is_active"))
    assert state["calibration"] is not None
    return Calibration.from_state(state["calibration"])
