"""The web interface over HTTP (TestClient): sessions, CSRF, roles, validation, pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.api.web.forms import request_data
from attrition.api.web.history import factor_bars
from attrition.api.web.model import card_version
from attrition.api.web.rendering import fr_number, fr_percent, fr_signed, fr_value
from attrition.config import Settings
from attrition.db.engine import Database
from attrition.security.sessions import KeySealer
from attrition.security.store import create_key
from tests.helpers import Keys, auth

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
FORM_TOKEN = re.compile(r'name="jeton" value="([0-9a-f]{32})"')


@pytest.fixture
def web(client: TestClient) -> Iterator[TestClient]:
    """The shared TestClient with an empty cookie jar (one browser session per test)."""
    client.cookies.clear()
    yield client
    client.cookies.clear()


def csrf(web: TestClient, path: str = "/app/connexion") -> str:
    match = CSRF.search(web.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(web: TestClient, key: str) -> Any:
    token = csrf(web)
    return web.post("/app/connexion", data={"cle": key, "csrf": token}, follow_redirects=False)


def form_of(employee: dict[str, Any]) -> dict[str, str]:
    return {
        k: ("true" if v is True else "false" if v is False else str(v)) for k, v in employee.items()
    }


def test_pages_need_a_session(web: TestClient) -> None:
    for path in ("/app", "/app/prediction", "/app/historique", "/app/modele", "/app/derive"):
        r = web.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/app/connexion", path
    page = web.get("/app/connexion")
    assert page.status_code == 200
    assert 'lang="fr"' in page.text and "Clé API" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert web.get("/static/app.css").status_code == 200
    assert web.get("/static/app.js").headers["content-type"].startswith("text/javascript")


def test_sign_in_keeps_the_key_sealed_in_a_strict_cookie(web: TestClient, keys: Keys) -> None:
    r = sign_in(web, keys.predicteur)
    assert r.status_code == 303 and r.headers["location"] == "/app/prediction"
    cookie = r.headers["set-cookie"]
    assert "attrition_session=" in cookie
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "path=/app" in cookie.lower() and "secure" not in cookie.lower()  # test: plain HTTP
    assert keys.predicteur not in cookie and keys.predicteur.split("_")[2] not in cookie
    assert keys.predicteur not in r.headers["location"]
    page = web.get("/app/prediction")
    assert "test-predicteur" in page.text and "Se déconnecter" in page.text


def test_sign_in_errors_are_french(web: TestClient, keys: Keys, database: Database) -> None:
    token = csrf(web)
    r = web.post("/app/connexion", data={"cle": "ftr_nope", "csrf": token})
    assert r.status_code == 401 and "Clé API mal formée" in r.text
    r = web.post("/app/connexion", data={"cle": "", "csrf": token})
    assert r.status_code == 401 and "Saisissez votre clé API." in r.text
    r = web.post("/app/connexion", data={"cle": keys.predicteur, "csrf": "forged"})
    assert r.status_code == 403 and "Jeton de sécurité" in r.text
    r = web.post("/app/connexion", data={"cle": keys.predicteur})
    assert r.status_code == 403
    with database.owner_engine().connect() as conn:
        routes = conn.execute(
            text("SELECT route FROM rejected_requests WHERE route LIKE '/app/%' AND status = 401")
        ).scalars()
        assert "/app/connexion" in set(routes)


def test_score_a_stored_employee_through_the_service(
    web: TestClient, keys: Keys, database: Database
) -> None:
    sign_in(web, keys.predicteur)
    token = csrf(web, "/app/prediction")
    r = web.post(
        "/app/prediction/employe",
        data={"id_employee": "1", "csrf": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    pid = int(r.headers["location"].rsplit("/", 1)[1])
    page = web.get(r.headers["location"])
    assert page.status_code == 200
    assert f"Prédiction n° {pid}" in page.text and "Probabilité de départ" in page.text
    assert "Facteurs principaux" in page.text and "Heures supplémentaires" in page.text
    with database.owner_engine().connect() as conn:
        row = conn.execute(
            text(
                "SELECT i.source, i.id_employee, k.name FROM predictions p "
                "JOIN prediction_inputs i ON i.id = p.input_id "
                "JOIN api_keys k ON k.id = i.api_key_id WHERE p.id = :id"
            ),
            {"id": pid},
        ).one()
    assert tuple(row) == ("web", 1, "test-predicteur")
    # The API shows the same recorded prediction.
    api = web.get(f"/v1/predictions/{pid}", headers=auth(keys.predicteur)).json()
    assert api["source"] == "web" and api["id_employee"] == 1


def test_stored_employee_errors(web: TestClient, keys: Keys) -> None:
    sign_in(web, keys.predicteur)
    token = csrf(web, "/app/prediction")
    r = web.post("/app/prediction/employe", data={"id_employee": "abc", "csrf": token})
    assert r.status_code == 422 and "Identifiant invalide" in r.text
    r = web.post("/app/prediction/employe", data={"id_employee": "999999", "csrf": token})
    assert r.status_code == 404 and "Employé 999999 inconnu" in r.text
    assert web.get("/app/prediction?dossier=999999").status_code == 404
    assert web.get("/app/prediction?dossier=-3").status_code == 422
    prefilled = web.get("/app/prediction?dossier=1")
    assert prefilled.status_code == 200
    assert "rattachée au dossier de l'employé" in prefilled.text
    assert 'name="id_employee" value="1"' in prefilled.text


def test_score_the_form_with_the_api_schema(
    web: TestClient, keys: Keys, database: Database
) -> None:
    sign_in(web, keys.predicteur)
    example = web.get("/app/prediction?exemple=1").text
    assert 'value="41"' in example
    token = csrf(web, "/app/prediction")
    data = {**form_of(EXAMPLE_EMPLOYEE), "csrf": token, "revenu_mensuel": "5\u202f993"}
    r = web.post("/app/prediction", data=data, follow_redirects=False)
    assert r.status_code == 303
    page = web.get(r.headers["location"]).text
    assert "Risque" in page and "Valeurs envoyées au modèle" in page

    bad = {**data, "age": "80", "genre": "X", "augmentation_salaire_precedente": "onze"}
    del bad["poste"]
    r = web.post("/app/prediction", data=bad)
    assert r.status_code == 422
    assert "doit être inférieur ou égal à 70" in r.text
    assert "champ obligatoire manquant" in r.text
    assert "valeur non autorisée" in r.text and "doit être un nombre" in r.text
    assert 'aria-invalid="true"' in r.text and "4 champ(s) à corriger" in r.text

    incoherent = {**data, "annees_dans_l_entreprise": "2", "annees_dans_le_poste_actuel": "5"}
    r = web.post("/app/prediction", data=incoherent)
    assert r.status_code == 422 and "dépasse" in r.text

    unknown = {**data, "id_employee": "999999"}
    r = web.post("/app/prediction", data=unknown)
    assert r.status_code == 404 and "Employé 999999 inconnu" in r.text

    with database.owner_engine().connect() as conn:
        n = conn.execute(
            text(
                "SELECT count(*) FROM rejected_requests "
                "WHERE route = '/app/prediction' AND status = 422"
            )
        ).scalar_one()
    assert n >= 2


def test_a_form_sent_twice_records_one_prediction(
    web: TestClient, keys: Keys, database: Database
) -> None:
    """Double click or reload of the POST: the first prediction again, nothing new recorded."""
    sign_in(web, keys.predicteur)
    page = web.get("/app/prediction").text
    token = csrf(web, "/app/prediction")
    jetons = FORM_TOKEN.findall(page)
    assert len(jetons) == 2 and len(set(jetons)) == 1  # one token for the page's two forms
    jeton = jetons[0]
    assert jeton not in web.get("/app/prediction").text  # a new one at each rendering
    data = {**form_of(EXAMPLE_EMPLOYEE), "csrf": token, "jeton": jeton}
    first = web.post("/app/prediction", data=data, follow_redirects=False)
    again = web.post("/app/prediction", data=data, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert again.headers["location"] == first.headers["location"]
    # The same page, changed and sent again (browser back, then edit): a new prediction.
    changed = web.post("/app/prediction", data={**data, "age": "42"}, follow_redirects=False)
    assert changed.status_code == 303
    assert changed.headers["location"] != first.headers["location"]
    # The stored-employee form of the same page, sent twice.
    stored = {"id_employee": "2", "csrf": token, "jeton": jeton}
    one = web.post("/app/prediction/employe", data=stored, follow_redirects=False)
    two = web.post("/app/prediction/employe", data=stored, follow_redirects=False)
    assert one.status_code == two.status_code == 303
    assert one.headers["location"] == two.headers["location"]
    with database.owner_engine().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.id, i.source, i.id_employee, i.age FROM predictions p "
                "JOIN prediction_inputs i ON i.id = p.input_id "
                "WHERE starts_with(i.idempotency_key, :k) ORDER BY p.id"
            ),
            {"k": f"web:{jeton}:"},
        ).all()
    ids = [int(r[0]) for r in rows]
    assert len(rows) == 3, rows  # the form, the changed form, the stored employee: once each
    assert ids == sorted(
        int(r.headers["location"].rsplit("/", 1)[1]) for r in (first, changed, one)
    )
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("web", None, 41),
        ("web", None, 42),
        ("web", 2, rows[2][3]),
    ]


def test_auditeur_reads_but_cannot_score(web: TestClient, keys: Keys) -> None:
    r = sign_in(web, keys.auditeur)
    assert r.headers["location"] == "/app/historique"
    history = web.get("/app/historique")
    assert history.status_code == 200 and ">Prédire<" not in history.text
    assert ">Dérive<" in history.text
    denied = web.get("/app/prediction")
    assert denied.status_code == 403
    assert "Le rôle « auditeur » ne permet pas cette opération" in denied.text
    token = csrf(web, "/app/historique")
    r = web.post("/app/prediction/employe", data={"id_employee": "1", "csrf": token})
    assert r.status_code == 403
    r = web.post("/app/prediction", data={**form_of(EXAMPLE_EMPLOYEE), "csrf": token})
    assert r.status_code == 403
    assert web.get("/app", follow_redirects=False).headers["location"] == "/app/historique"


def test_predicteur_cannot_see_drift_nor_others_predictions(web: TestClient, keys: Keys) -> None:
    other = web.post(
        "/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.autre_predicteur)
    ).json()["prediction_id"]
    sign_in(web, keys.predicteur)
    assert web.get("/app/derive").status_code == 403
    assert web.get(f"/app/predictions/{other}").status_code == 404
    assert f"n° {other}<" not in web.get("/app/historique").text


def test_history_filters_and_pages(web: TestClient, keys: Keys) -> None:
    for _ in range(2):
        web.post("/v1/employees/7/predictions", headers=auth(keys.predicteur))
    batch = {"employes": [EXAMPLE_EMPLOYEE] * 51}  # more than one page of 50
    assert web.post("/v1/predictions/batch", json=batch, headers=auth(keys.predicteur)).is_success
    sign_in(web, keys.auditeur)
    page = web.get("/app/historique?id_employee=7&depuis=2020-01-01&jusqu_a=2999-12-31")
    assert page.status_code == 200 and "API (dossier)" in page.text
    assert web.get("/app/historique?prediction=reste&model_version=v999").status_code == 200
    bad = web.get("/app/historique?depuis=31/01/2026&id_employee=x&prediction=peut-etre&curseur=%%")
    assert bad.status_code == 422
    for message in ("AAAA-MM-JJ", "nombre entier positif attendu", "valeur non autorisée"):
        assert message in bad.text
    assert "curseur invalide" in bad.text
    first = web.get("/app/historique")
    assert "Page suivante" in first.text
    href = re.search(r'href="(/app/historique\?[^"]*curseur=[^"]+)"', first.text)
    assert href
    second = web.get(href.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and "Première page" in second.text


def test_model_and_drift_pages(web: TestClient, keys: Keys, model_version: str) -> None:
    sign_in(web, keys.auditeur)
    card = web.get("/app/modele")
    assert card.status_code == 200 and model_version in card.text
    assert "Performances en validation croisée" in card.text
    assert "Variables attendues (27)" in card.text
    if "/app/modele/figures/roc.png" in card.text:
        figure = web.get("/app/modele/figures/roc.png")
        assert figure.status_code == 200 and figure.headers["content-type"] == "image/png"
    assert web.get("/app/modele/figures/secret.txt").status_code == 404
    drift = web.get("/app/derive?depuis=2000-01-01")
    assert drift.status_code == 200 and "Verdict" in drift.text and "PSI par variable" in drift.text
    assert web.get("/app/derive?depuis=hier").status_code == 422


def test_revoked_key_ends_the_session(
    web: TestClient, keys: Keys, database: Database, settings: Settings
) -> None:
    created = create_key(database, settings, name="web-revoked", role="predicteur")
    sign_in(web, created.key)
    assert web.get("/app/prediction").status_code == 200
    revoked = web.delete(f"/v1/keys/{created.key_id}", headers=auth(keys.admin))
    assert revoked.status_code == 200
    r = web.get("/app/prediction", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/connexion"
    page = web.get("/app/connexion")
    assert "Clé API révoquée. Reconnectez-vous" in page.text
    assert web.get("/app/prediction", follow_redirects=False).status_code == 303


def test_tampered_or_expired_session_and_sign_out(web: TestClient, keys: Keys) -> None:
    sign_in(web, keys.predicteur)
    token = csrf(web, "/app/prediction")
    assert web.post("/app/deconnexion", data={"csrf": "x"}).status_code == 403
    r = web.post("/app/deconnexion", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    assert "Vous êtes déconnecté(e)." in web.get("/app/connexion").text
    assert web.get("/app/prediction", follow_redirects=False).status_code == 303
    web.cookies.set("attrition_session", "garbage", path="/app")
    assert web.get("/app/historique", follow_redirects=False).status_code == 303


def test_sealer_refuses_other_secrets_and_old_tokens() -> None:
    sealer = KeySealer("a" * 40)
    token = sealer.seal("ftr_secret")
    assert sealer.open(token) == "ftr_secret"
    assert KeySealer("b" * 40).open(token) is None
    assert KeySealer("a" * 40, max_age_s=-1).open(token) is None
    assert sealer.open("not-a-token-é") is None


def test_french_formatting_and_helpers(tmp_path: Any) -> None:
    assert fr_number(1234567) == "1\u202f234\u202f567"
    assert fr_number(0.5, 3) == "0,500" and fr_number(None) == "—"
    assert fr_number(True) == "oui" and fr_number("x") == "x"
    assert fr_percent(0.1234) == "12,3\u00a0%" and fr_percent(None) == "—"
    assert fr_signed(0.5) == "+0,50" and fr_signed(-0.25) == "−0,25" and fr_signed(0.0) == "0,00"
    assert fr_value(False) == "non" and fr_value(3.0) == "3" and fr_value(11.5) == "11,50"
    data = request_data(
        {
            "age": " 41 ",
            "augmentation_salaire_precedente": "11,5",
            "heures_supplementaires": "true",
            "genre": "F",
            "revenu_mensuel": "",
            "id_employee": "12",
            "note_evaluation_actuelle": "3.0",
        }
    )
    assert data == {
        "age": 41,
        "augmentation_salaire_precedente": 11.5,
        "heures_supplementaires": True,
        "genre": "F",
        "note_evaluation_actuelle": 3.0,
        "id_employee": 12,
    }
    bars = factor_bars(
        {"facteurs_hausse": [{"contribution": 0.5}], "facteurs_baisse": [{"contribution": -1.0}]}
    )
    assert [b["width"] for b in bars] == [50.0, 100.0]
    assert factor_bars({}) == []
    explained = factor_bars(
        {
            "facteurs_hausse": [
                {"variable": "part_anciennete_dans_le_poste", "valeur": 4, "contribution": 0.2},
                {"variable": "age", "valeur": 41, "contribution": 0.1},
                {"variable": "sans_participation_pee", "valeur": 0, "contribution": 0.3},
            ]
        },
        EXAMPLE_EMPLOYEE,
    )
    values = {f["variable"]: f["valeur"] for f in explained}
    assert values["age"] == 41 and values["sans_participation_pee"] is True
    assert abs(values["part_anciennete_dans_le_poste"] - 4 / 7) < 1e-9
    broken = factor_bars(
        {"facteurs_hausse": [{"variable": "x", "valeur": 1, "contribution": 1}]}, {"age": 41}
    )
    assert broken[0]["valeur"] == 1
    card = tmp_path / "modele.md"
    card.write_text("# Fiche\n\n- Version : **v3**\n", encoding="utf-8")
    assert card_version(card) == "v3"
    assert card_version(tmp_path / "absent.md") is None
