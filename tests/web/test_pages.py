"""The web interface over HTTP (TestClient): sessions, CSRF, roles, validation, pages."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.api.web.forms import request_data
from attrition.api.web.history import factor_bars
from attrition.api.web.model import card_version
from attrition.api.web.rendering import fr_number, fr_percent, fr_signed, fr_value
from attrition.db.engine import Database
from attrition.security.sessions import cookie_must_be_secure, host_name
from attrition.services.accounts import AccountService, connect_to
from tests.api.test_minimal_inputs import stored_for_prediction
from tests.helpers import PASSWORD, Keys, People, Person, auth, create_person, used_today

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
FORM_TOKEN = re.compile(r'name="jeton" value="([0-9a-f]{32})"')


def csrf(web: TestClient, path: str = "/app/connexion") -> str:
    match = CSRF.search(web.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(web: TestClient, person: Person, password: str | None = None) -> Any:
    token = csrf(web)
    return web.post(
        "/app/connexion",
        data={"login": person.login, "mot_de_passe": password or person.password, "csrf": token},
        follow_redirects=False,
    )


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
    assert 'lang="fr"' in page.text and "Mot de passe" in page.text and "Clé API" not in page.text
    assert 'autocomplete="current-password"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert web.get("/static/app.css").status_code == 200
    assert web.get("/static/app.js").headers["content-type"].startswith("text/javascript")


def test_sign_in_opens_a_server_side_session_in_a_strict_cookie(
    web: TestClient, people: People, database: Database
) -> None:
    r = sign_in(web, people.predicteur)
    assert r.status_code == 303 and r.headers["location"] == "/app/prediction"
    cookie = r.headers["set-cookie"]
    assert "attrition_session=" in cookie
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "path=/app" in cookie.lower() and "secure" not in cookie.lower()  # loopback HTTP
    assert PASSWORD not in cookie and PASSWORD not in r.headers["location"]
    page = web.get("/app/prediction")
    assert "web-predicteur" in page.text and "Se déconnecter" in page.text
    with database.owner_engine().connect() as conn:
        open_sessions = conn.execute(
            text(
                "SELECT count(*) FROM web_sessions s JOIN users u ON u.id = s.user_id "
                "WHERE u.login = 'web-predicteur' AND s.revoked_at IS NULL"
            )
        ).scalar_one()
    assert open_sessions >= 1


def test_the_cookie_is_secure_outside_http_loopback(client: TestClient) -> None:
    client.cookies.clear()
    try:
        page = client.get("/app/connexion")  # http://testserver: not the loopback address
        assert "attrition_session=" in page.headers["set-cookie"]
        assert "; secure" in page.headers["set-cookie"].lower()
        https = client.get("https://127.0.0.1/app/connexion")
        assert "; secure" in https.headers["set-cookie"].lower()
    finally:
        client.cookies.clear()
    assert not cookie_must_be_secure("http", host_name("127.0.0.1:8000"))
    assert not cookie_must_be_secure("http", host_name("[::1]:8000"))
    assert not cookie_must_be_secure("http", host_name("localhost"))
    assert cookie_must_be_secure("https", host_name("127.0.0.1:8000"))
    assert cookie_must_be_secure("http", host_name("rh.example.org"))
    assert cookie_must_be_secure("http", host_name("192.168.1.20:8000"))


def test_sign_in_errors_are_french(web: TestClient, people: People, database: Database) -> None:
    token = csrf(web)
    wrong = web.post(
        "/app/connexion",
        data={"login": people.predicteur.login, "mot_de_passe": "pas-le-bon-Mot-1", "csrf": token},
    )
    unknown = web.post(
        "/app/connexion", data={"login": "personne", "mot_de_passe": PASSWORD, "csrf": token}
    )
    for r in (wrong, unknown):
        assert r.status_code == 401 and "Identifiant ou mot de passe incorrect." in r.text
        assert "Clé API" not in r.text and "ftr_" not in r.text
    assert 'value="web-predicteur"' in wrong.text  # the login is kept, never the password
    r = web.post("/app/connexion", data={"login": "", "mot_de_passe": "", "csrf": token})
    assert r.status_code == 401 and "Saisissez votre identifiant et votre mot de passe." in r.text
    data = {"login": people.predicteur.login, "mot_de_passe": PASSWORD}
    r = web.post("/app/connexion", data={**data, "csrf": "forged"})
    assert r.status_code == 403 and "Jeton de sécurité" in r.text
    assert web.post("/app/connexion", data=data).status_code == 403
    with database.owner_engine().connect() as conn:
        routes = conn.execute(
            text("SELECT route FROM rejected_requests WHERE route LIKE '/app/%' AND status = 401")
        ).scalars()
        assert "/app/connexion" in set(routes)


def test_an_api_key_does_not_open_the_web_interface(web: TestClient, keys: Keys) -> None:
    token = csrf(web)
    r = web.post(
        "/app/connexion",
        data={"login": "admin", "mot_de_passe": keys.admin, "cle": keys.admin, "csrf": token},
    )
    assert r.status_code == 401 and "Identifiant ou mot de passe incorrect." in r.text


def test_failed_sign_ins_throttle_the_account(web: TestClient, database: Database) -> None:
    person = create_person(database, "web-bloque", "predicteur")
    for attempt in range(5):
        r = sign_in(web, person, f"Mauvais-mot-de-passe-{attempt}")
        assert r.status_code == 401
    assert "réessayez dans 30 s" in r.text
    r = sign_in(web, person)  # the right password waits too
    assert r.status_code == 429 and int(r.headers["retry-after"]) <= 30
    assert "infructueux pour ce compte : réessayez dans" in r.text
    other = sign_in(web, Person("web-predicteur"))  # other accounts are not affected
    assert other.status_code == 303


def test_first_sign_in_asks_for_a_new_password(
    web: TestClient, people: People, database: Database
) -> None:
    fresh = create_person(database, "web-nouveau", "auditeur", ready=False)
    r = sign_in(web, fresh)
    assert r.status_code == 303 and r.headers["location"] == "/app/mot-de-passe"
    for path in ("/app", "/app/historique", "/app/modele"):
        blocked = web.get(path, follow_redirects=False)
        assert blocked.headers["location"] == "/app/mot-de-passe", path
    page = web.get("/app/mot-de-passe")
    assert "Choisissez votre mot de passe" in page.text and "12 caractères" in page.text
    token = csrf(web, "/app/mot-de-passe")
    weak = web.post(
        "/app/mot-de-passe",
        data={
            "mot_de_passe_actuel": fresh.password,
            "nouveau_mot_de_passe": "motdepasse",
            "confirmation": "motdepasse",
            "csrf": token,
        },
    )
    assert weak.status_code == 422 and "recommandation CNIL" in weak.text
    assert "Nouveau mot de passe" in weak.text
    done = web.post(
        "/app/mot-de-passe",
        data={
            "mot_de_passe_actuel": fresh.password,
            "nouveau_mot_de_passe": "Mon-Nouveau-Secret-7",
            "confirmation": "Mon-Nouveau-Secret-7",
            "csrf": token,
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    after = web.get("/app/historique")
    assert after.status_code == 200 and "Mot de passe enregistré." in after.text
    web.cookies.clear()
    assert sign_in(web, fresh).status_code == 401
    assert sign_in(web, fresh, "Mon-Nouveau-Secret-7").headers["location"] == "/app/historique"


def test_score_a_stored_employee_through_the_service(
    web: TestClient, people: People, keys: Keys, database: Database
) -> None:
    sign_in(web, people.predicteur)
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
    assert f"Prédiction n° {pid}" in page.text and "Probabilité estimée de départ" in page.text
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
    assert tuple(row) == ("web", 1, people.predicteur.audit_name)
    # Data minimisation: the fields the model does not use are not copied from the record.
    assert stored_for_prediction(database, pid)[:4] == (None, None, False, False)
    # The API shows the same recorded prediction.
    api = web.get(f"/v1/predictions/{pid}", headers=auth(keys.auditeur)).json()
    assert api["source"] == "web" and api["id_employee"] == 1


def test_stored_employee_errors(web: TestClient, people: People, keys: Keys) -> None:
    sign_in(web, people.predicteur)
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
    # The form is not prefilled with what the model does not use (sent back, it is stored).
    assert '<option value="F" selected>' not in prefilled.text
    assert '<option value="Célibataire" selected>' not in prefilled.text
    assert 'name="id_employee" value="1"' in prefilled.text


def test_score_the_form_with_the_api_schema(
    web: TestClient, people: People, keys: Keys, database: Database
) -> None:
    sign_in(web, people.predicteur)
    example = web.get("/app/prediction?exemple=1").text
    assert 'value="41"' in example
    token = csrf(web, "/app/prediction")
    data = {**form_of(EXAMPLE_EMPLOYEE), "csrf": token, "revenu_mensuel": "5\u202f993"}
    r = web.post("/app/prediction", data=data, follow_redirects=False)
    assert r.status_code == 303
    page = web.get(r.headers["location"]).text
    assert "seuil d'alerte" in page and "Valeurs envoyées au modèle" in page

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
    web: TestClient, people: People, keys: Keys, database: Database
) -> None:
    """Double click or reload of the POST: the first prediction again, nothing new recorded."""
    sign_in(web, people.predicteur)
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


def test_a_form_sent_twice_counts_once_in_the_daily_quota(
    web: TestClient, people: People, database: Database
) -> None:
    """The replayed form makes no prediction, so it takes nothing from the day's quota."""
    sign_in(web, people.autre_predicteur)
    page = web.get("/app/prediction").text
    token = csrf(web, "/app/prediction")
    data = {**form_of(EXAMPLE_EMPLOYEE), "csrf": token, "jeton": FORM_TOKEN.findall(page)[0]}
    before = used_today(database, name=people.autre_predicteur.audit_name)
    first = web.post("/app/prediction", data=data, follow_redirects=False)
    again = web.post("/app/prediction", data=data, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert again.headers["location"] == first.headers["location"]
    assert used_today(database, name=people.autre_predicteur.audit_name) == before + 1


def test_auditeur_reads_but_cannot_score(web: TestClient, people: People, keys: Keys) -> None:
    r = sign_in(web, people.auditeur)
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


def test_predicteur_cannot_see_drift_nor_others_predictions(
    web: TestClient, people: People, keys: Keys
) -> None:
    other = web.post(
        "/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.autre_predicteur)
    ).json()["prediction_id"]
    sign_in(web, people.predicteur)
    assert web.get("/app/derive").status_code == 403
    assert web.get(f"/app/predictions/{other}").status_code == 404
    assert f"n° {other}<" not in web.get("/app/historique").text


def test_history_filters_and_pages(web: TestClient, people: People, keys: Keys) -> None:
    for _ in range(2):
        web.post("/v1/employees/7/predictions", headers=auth(keys.predicteur))
    batch = {"employes": [EXAMPLE_EMPLOYEE] * 51}  # more than one page of 50
    assert web.post("/v1/predictions/batch", json=batch, headers=auth(keys.predicteur)).is_success
    sign_in(web, people.auditeur)
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


def test_model_and_drift_pages(
    web: TestClient, people: People, keys: Keys, model_version: str
) -> None:
    sign_in(web, people.auditeur)
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
    assert "Performance réalisée" in drift.text and "prédictions résolues" in drift.text
    assert web.get("/app/derive?depuis=hier").status_code == 422


def test_disabling_an_account_ends_its_session_at_once(
    web: TestClient, people: People, database: Database
) -> None:
    person = create_person(database, "web-desactive", "predicteur")
    sign_in(web, person)
    assert web.get("/app/prediction").status_code == 200
    asyncio.run(AccountService(connect_to(database.owner_conninfo)).disable_user(person.login))
    r = web.get("/app/prediction", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/connexion"
    page = web.get("/app/connexion")
    assert "Votre session est terminée ou a expiré" in page.text
    assert web.get("/app/prediction", follow_redirects=False).status_code == 303
    r = sign_in(web, person)
    assert r.status_code == 401 and "Ce compte est désactivé" in r.text


def test_a_cookie_copied_before_sign_out_is_refused_after(web: TestClient, people: People) -> None:
    """Issue 16: sign-out must end the session on the server, not only in this browser."""
    sign_in(web, people.predicteur)
    assert web.get("/app/historique").status_code == 200
    copied = web.cookies.get("attrition_session")
    assert copied
    token = csrf(web, "/app/prediction")
    r = web.post("/app/deconnexion", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    web.cookies.clear()
    web.cookies.set("attrition_session", copied, path="/app")
    r = web.get("/app/historique", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/connexion"


def test_tampered_or_expired_session_and_sign_out(web: TestClient, people: People) -> None:
    sign_in(web, people.predicteur)
    token = csrf(web, "/app/prediction")
    assert web.post("/app/deconnexion", data={"csrf": "x"}).status_code == 403
    r = web.post("/app/deconnexion", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    assert "Vous êtes déconnecté(e)." in web.get("/app/connexion").text
    assert web.get("/app/prediction", follow_redirects=False).status_code == 303
    web.cookies.set("attrition_session", "garbage", path="/app")
    assert web.get("/app/historique", follow_redirects=False).status_code == 303


def test_admin_page_creates_resets_disables_and_ends_sessions(
    web: TestClient, people: People, database: Database
) -> None:
    # The person whose session the admin ends, in a browser of its own.
    other = TestClient(web.app, base_url="http://127.0.0.1")
    sign_in(other, people.autre_predicteur)
    assert other.get("/app/historique").status_code == 200

    sign_in(web, people.predicteur)
    assert web.get("/app/comptes").status_code == 403
    assert ">Comptes<" not in web.get("/app/historique").text
    web.cookies.clear()
    sign_in(web, people.admin)
    page = web.get("/app/comptes")
    assert page.status_code == 200 and ">Comptes<" in page.text
    assert "web-autre" not in page.text and "web-predicteur-2" in page.text
    token = csrf(web, "/app/comptes")

    created = web.post(
        "/app/comptes", data={"login": "Web.Cree", "role": "auditeur", "csrf": token}
    )
    assert created.status_code == 201
    shown = re.search(r'data-testid="mot-de-passe">([^<]+)<', created.text)
    assert shown and "web.cree" in created.text
    assert web.get("/app/comptes").text.count(shown.group(1)) == 0  # shown once only
    again = web.post("/app/comptes", data={"login": "web.cree", "role": "auditeur", "csrf": token})
    assert again.status_code == 409 and "existe déjà" in again.text
    bad = web.post("/app/comptes", data={"login": "é", "role": "root", "csrf": token})
    assert bad.status_code == 422 and "identifiant invalide" in bad.text

    reset = web.post("/app/comptes/web.cree/reinitialisation", data={"csrf": token})
    assert reset.status_code == 200
    new = re.search(r'data-testid="mot-de-passe">([^<]+)<', reset.text)
    assert new and new.group(1) != shown.group(1)

    sessions = web.get("/app/comptes").text
    ids = re.findall(r'action="/app/sessions/(\d+)/fin"', sessions)
    assert ids and "(cette session)" in sessions
    with database.owner_engine().connect() as conn:
        target = conn.execute(
            text(
                "SELECT s.id FROM web_sessions s JOIN users u ON u.id = s.user_id "
                "WHERE u.login = 'web-predicteur-2' AND s.revoked_at IS NULL "
                "ORDER BY s.id DESC LIMIT 1"
            )
        ).scalar_one()
    assert str(target) in ids
    ended = web.post(f"/app/sessions/{target}/fin", data={"csrf": token}, follow_redirects=False)
    assert ended.status_code == 303
    assert f"Session n° {target} fermée." in web.get("/app/comptes").text
    assert other.get("/app/historique", follow_redirects=False).status_code == 303

    disabled = web.post(
        "/app/comptes/web.cree/desactivation", data={"csrf": token}, follow_redirects=False
    )
    assert disabled.status_code == 303
    assert "désactivé" in web.get("/app/comptes").text
    own = web.post("/app/comptes/web-admin/desactivation", data={"csrf": token})
    assert own.status_code == 422 and "votre propre compte" in own.text
    assert web.post("/app/comptes/web.cree/desactivation", data={"csrf": "x"}).status_code == 403


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
    # "No participation" (1) reads "Participe au PEE : non", never a double negative.
    assert values["age"] == 41 and values["sans_participation_pee"] is False
    labels = {f["variable"]: f["libelle_lisible"] for f in explained}
    assert labels["sans_participation_pee"].startswith("Participe au PEE")
    assert abs(values["part_anciennete_dans_le_poste"] - 4 / 7) < 1e-9
    broken = factor_bars(
        {"facteurs_hausse": [{"variable": "x", "valeur": 1, "contribution": 1}]}, {"age": 41}
    )
    assert broken[0]["valeur"] == 1
    card = tmp_path / "modele.md"
    card.write_text("# Fiche\n\n- Version : **v3**\n", encoding="utf-8")
    assert card_version(card) == "v3"
    assert card_version(tmp_path / "absent.md") is None


def test_hr_records_an_outcome_from_the_web(
    web: TestClient, database: Database, people: People
) -> None:
    from datetime import UTC, datetime, timedelta

    rh = create_person(database, "rh-web", "rh")
    signed = sign_in(web, rh)
    assert signed.status_code == 303 and signed.headers["location"] == "/app/issue"
    page = web.get("/app/issue")
    assert page.status_code == 200 and "Enregistrer ce qui est arrivé" in page.text
    assert "Historique" not in page.text and 'aria-current="page">Issues' in page.text
    assert web.get("/app/historique").status_code == 403
    with database.owner_engine().connect() as c:
        employee = int(
            c.scalar(text("SELECT id_employee FROM employees ORDER BY id_employee DESC OFFSET 2"))
        )
    token = csrf(web, "/app/issue")
    future = str(datetime.now(UTC).date() + timedelta(days=3))
    refused = web.post(
        "/app/issue",
        data={"csrf": token, "id_employee": str(employee), "statut": "parti", "date": future},
    )
    assert refused.status_code == 422 and "futur" in refused.text
    day = str(datetime.now(UTC).date() - timedelta(days=10))
    done = web.post(
        "/app/issue",
        data={"csrf": token, "id_employee": str(employee), "statut": "parti", "date": day},
    )
    assert done.status_code == 200 and "Constat enregistré" in done.text
    with database.owner_engine().connect() as c:
        row = c.execute(
            text(
                "SELECT statut, date_constat::text, recorded_by FROM employee_outcomes "
                "WHERE id_employee = :e"
            ),
            {"e": employee},
        ).one()
    assert row[0] == "parti" and row[1] == day and row[2].startswith("web, clé")
    # A predicteur has no outcome page.
    sign_in(web, people.predicteur)
    assert web.get("/app/issue").status_code == 403


def test_only_the_pages_go_through_the_session_layers() -> None:
    """The session cookie's path is /app: the API and the rest never decode a session."""
    from attrition.api.web import PageSessions

    seen: dict[str, bool] = {}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen[scope["path"]] = "session" in scope

    layer = PageSessions(inner, secret_key="x" * 32, session_cookie="s", max_age=60, path="/app")

    async def main() -> None:
        for path in ("/app", "/app/score", "/v1/predictions", "/health", "/application"):
            scope = {"type": "http", "path": path, "headers": [], "method": "GET"}
            await layer(scope, None, None)

    asyncio.run(main())
    assert seen == {
        "/app": True,
        "/app/score": True,
        "/v1/predictions": False,
        "/health": False,
        "/application": False,
    }
