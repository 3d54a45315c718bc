"""The model page and the result page read by an HR user: plain French, numbers from the card.

The expected numbers are read from the active version's stored metrics (its out-of-fold
confusion matrix), never typed here; the technical terms stay, inside "Détails techniques".
"""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi.testclient import TestClient

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.model.summary import F_BETA
from tests.helpers import Keys, People, Person, auth

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
DETAILS = re.compile(r"<details\b.*?</details>", re.S)
TAGS = re.compile(r"<[^>]+>")


def sign_in(web: TestClient, person: Person) -> None:
    match = CSRF.search(web.get("/app/connexion").text)
    assert match
    r = web.post(
        "/app/connexion",
        data={"login": person.login, "mot_de_passe": person.password, "csrf": match.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303


def words(markup: str) -> str:
    """The text a reader sees, whitespace collapsed (entities decoded)."""
    return " ".join(html.unescape(TAGS.sub(" ", markup)).split())


def visible(page: str) -> str:
    """What is read without opening any ``<details>`` block."""
    return words(DETAILS.sub(" ", page))


def technical(page: str) -> str:
    block = re.search(
        r"<details\b[^>]*>\s*<summary>Détails techniques</summary>.*?</details>", page, re.S
    )
    assert block, "no collapsed « Détails techniques » section"
    return words(block.group(0))


def stored_metrics(web: TestClient) -> dict[str, Any]:
    metrics: dict[str, Any] = web.app.state.runtime.require().metrics  # type: ignore[attr-defined]
    return metrics


def check_plurals(text: str) -> None:
    pattern = r"\b(\d+) (répétitions?|plis?|départs?|fausses? alertes?|employés? restés?)"
    for count, phrase in re.findall(pattern, text.replace("\u202f", "")):
        for word in phrase.split():
            assert word.endswith("s") == (int(count) > 1), f"« {count} {phrase} »"


def test_model_page_is_written_for_hr(web: TestClient, people: People, model_version: str) -> None:
    sign_in(web, people.auditeur)
    page = web.get("/app/modele")
    assert page.status_code == 200
    seen = visible(page.text)
    for jargon in ("regression_logistique", "F2", "β", "logit", "hors-pli", "ROC-AUC"):
        assert jargon not in seen, jargon
    assert "régression logistique" in seen.lower()
    missed = int(F_BETA**2)
    assert (
        "repérer la plupart des départs, quitte à signaler des employés qui restent : un départ "
        f"manqué compte {missed} fois plus qu'une fausse alerte" in seen
    )
    (_kept, false_alarms), (missed_leavers, caught) = stored_metrics(web)["oof"]["confusion"]
    recall = round(100 * caught / (caught + missed_leavers))
    precision = round(100 * caught / (caught + false_alarms))
    assert f"Sur 100 départs réels, {recall} sont signalés" in seen
    assert f"sur 100 employés signalés, {precision} sont partis" in seen.lower()
    assert "décrivent la version" not in seen
    check_plurals(words(page.text))

    details = technical(page.text)
    assert "regression_logistique" in details and "F2" in details and "ROC-AUC" in details
    assert model_version in details


def test_model_page_counts_agree_with_their_number(
    web: TestClient, people: People, model_version: str
) -> None:
    sign_in(web, people.auditeur)
    text = words(web.get("/app/modele").text)
    check_plurals(text)
    found = re.findall(r"\b(\d+) (?:employés? restés?|employés?)\b", text)
    assert found, "no count of employees on the page"
    repeats = (stored_metrics(web).get("cv") or {}).get("protocol", {}).get("repeats")
    if repeats:  # a fresh clone trains with one repetition; the test version has no CV
        assert f"{repeats} répétition" + ("s" if repeats > 1 else "") in text


def test_result_page_factors_are_plain_sentences(
    web: TestClient, client: TestClient, people: People, keys: Keys
) -> None:
    employee = {**EXAMPLE_EMPLOYEE, "nombre_participation_pee": 0, "heures_supplementaires": True}
    r = client.post("/v1/predictions", json=employee, headers=auth(keys.predicteur))
    assert r.status_code == 201, r.text
    body = r.json()
    shown = {f["variable"] for f in body["explication"]["facteurs_hausse"]}
    assert {"sans_participation_pee", "heures_supplementaires"} <= shown
    # The API keeps its codes and numbers for machines.
    pee = next(
        f
        for f in body["explication"]["facteurs_hausse"]
        if f["variable"] == "sans_participation_pee"
    )
    assert pee["valeur"] == 1

    sign_in(web, people.auditeur)
    page = web.get(f"/app/predictions/{body['prediction_id']}")
    assert page.status_code == 200
    seen = visible(page.text)
    assert "logit" not in seen and "Aucune participation au PEE" not in seen
    factors = re.search(r'<table class="factors".*?<tbody>(.*?)</tbody>', page.text, re.S)
    assert factors
    rows = [words(row) for row in re.findall(r"<tr>.*?</tr>", factors.group(1), re.S)]
    assert "Participe au PEE (plan d'épargne entreprise) non augmente le risque" in rows
    assert "Fait des heures supplémentaires oui augmente le risque" in rows
    assert all(row.endswith(("augmente le risque", "diminue le risque")) for row in rows), rows
    details = technical(page.text)
    assert "logit" in details and "sans_participation_pee" in details
