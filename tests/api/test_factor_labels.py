"""The API's human-readable factor label is the app's plain label; codes and numbers stay."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from tests.helpers import Keys, auth

PLAIN_PEE = "Participe au PEE (plan d'épargne entreprise)"


def _factors(explanation: dict[str, Any]) -> list[dict[str, Any]]:
    return [*explanation["facteurs_hausse"], *explanation["facteurs_baisse"]]


def test_single_prediction_names_pee_plainly(
    client: TestClient, keys: Keys, model_version: str
) -> None:
    r = client.post(
        "/v1/predictions",
        json={**EXAMPLE_EMPLOYEE, "nombre_participation_pee": 0},
        headers=auth(keys.predicteur),
    )
    assert r.status_code == 201, r.text
    assert "Aucune participation" not in r.text
    pee = [
        f for f in _factors(r.json()["explication"]) if f["variable"] == "sans_participation_pee"
    ]
    assert len(pee) == 1
    # The machine fields are unchanged: the code, the engineered value 1, a positive push.
    # The label answers its own question, so it never contradicts ``valeur`` (1 = no PEE).
    assert pee[0]["libelle"] == f"{PLAIN_PEE} : non"
    assert pee[0]["valeur"] == 1 and pee[0]["contribution"] > 0


def test_batch_prediction_names_pee_plainly(
    client: TestClient, keys: Keys, model_version: str
) -> None:
    items = [{**EXAMPLE_EMPLOYEE, "nombre_participation_pee": 0}] * 2
    r = client.post(
        "/v1/predictions/batch", json={"employes": items}, headers=auth(keys.predicteur)
    )
    assert r.status_code == 201, r.text
    assert "Aucune participation" not in r.text
    for prediction in r.json()["predictions"]:
        labels = {f["variable"]: f["libelle"] for f in _factors(prediction["explication"])}
        assert labels["sans_participation_pee"] == f"{PLAIN_PEE} : non"


def test_yes_no_label_answers_with_the_employees_value(
    client: TestClient, keys: Keys, model_version: str
) -> None:
    seen: dict[str, set[str]] = {}
    for overtime, pee in ((True, 0), (False, 2)):
        r = client.post(
            "/v1/predictions",
            json={
                **EXAMPLE_EMPLOYEE,
                "heures_supplementaires": overtime,
                "nombre_participation_pee": pee,
            },
            headers=auth(keys.predicteur),
        )
        assert r.status_code == 201, r.text
        for f in _factors(r.json()["explication"]):
            if f["variable"] == "heures_supplementaires":
                expected = "oui" if f["valeur"] else "non"
                assert f["libelle"] == f"Fait des heures supplémentaires : {expected}"
                seen.setdefault(f["variable"], set()).add(expected)
            if f["variable"] == "sans_participation_pee":
                expected = "non" if f["valeur"] else "oui"
                assert f["libelle"] == f"{PLAIN_PEE} : {expected}"
                seen.setdefault(f["variable"], set()).add(expected)
    assert seen, "no yes/no factor among the top factors of either employee"
