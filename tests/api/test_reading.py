"""The API's human-readable fields: the same French reading as the app and the CLI."""

from __future__ import annotations

from fastapi.testclient import TestClient

from attrition import wording
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from tests.helpers import Keys, auth


def test_prediction_carries_codes_and_a_french_reading(client: TestClient, keys: Keys) -> None:
    r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
    assert r.status_code == 201, r.text
    body = r.json()
    expected = wording.read_score(body["probabilite_depart"], body["seuil"])
    assert body["niveau_risque"] == expected.niveau  # machine code, unchanged
    assert body["prediction"] in {"depart", "reste"}
    assert body["libelle_risque"] == wording.RISK_LABELS[body["niveau_risque"]]
    assert body["lecture"].startswith(expected.texte.removesuffix("."))
    assert "seuil d'alerte" in body["lecture"] and "probable" not in body["lecture"]

    recorded = client.get(
        f"/v1/predictions/{body['prediction_id']}", headers=auth(keys.predicteur)
    ).json()
    assert recorded["lecture"] == body["lecture"]
    assert recorded["libelle_risque"] == body["libelle_risque"]


def test_batch_items_carry_the_reading(client: TestClient, keys: Keys) -> None:
    r = client.post(
        "/v1/predictions/batch",
        json={"employes": [EXAMPLE_EMPLOYEE, EXAMPLE_EMPLOYEE]},
        headers=auth(keys.predicteur),
    )
    assert r.status_code == 201
    assert all("seuil d'alerte" in p["lecture"] for p in r.json()["predictions"])


def test_invalid_json_is_explained_in_french(client: TestClient, keys: Keys) -> None:
    cases = {
        b"x": "JSON invalide : une valeur JSON est attendue au début",
        b'{"age": 41,}': "JSON invalide : nom de champ entre guillemets doubles attendu",
        b'{"age": 41': "JSON invalide : virgule attendue",
        b'{"age": 41}}': "JSON invalide : caractères en trop après le JSON",
    }
    for body, expected in cases.items():
        r = client.post(
            "/v1/predictions",
            content=body,
            headers={**auth(keys.predicteur), "content-type": "application/json"},
        )
        assert r.status_code == 422, body
        message = r.json()["errors"][0]["message"]
        assert message.startswith(expected), (body, message)
        assert "Expecting" not in message and "Extra data" not in message
