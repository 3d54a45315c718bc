"""End to end in headless Chromium: a real uvicorn server, the test database, Playwright.

Skipped, with the reason, only when no Chromium is installed (``.ci/run`` installs the Debian
package). The screenshots of the documentation (docs/img/interface/) are taken here.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import text

from attrition import wording
from attrition.config import PROJECT_ROOT
from attrition.data.vocabulary import FEATURE_NAMES
from attrition.db.engine import Database
from attrition.model.features import FEATURE_LABELS, YES_NO_FACTORS
from tests.helpers import PASSWORD, Keys, People, Person, create_person

pytestmark = pytest.mark.browser

CHROMIUM = (
    shutil.which("chromium")
    or shutil.which("chromium-browser")
    or shutil.which("google-chrome")
    or "/usr/bin/chromium"
)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=fr-FR",  # French date inputs in the screenshots
]
SHOTS = PROJECT_ROOT / "docs" / "img" / "interface"
#: axe-core, installed from npm by `make test` (pinned in the Makefile).
AXE_JS = PROJECT_ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def browser(keys: Keys, people: People) -> Iterator[Any]:
    # Keys and accounts are made (with asyncio.run) before Playwright's sync API starts an
    # event loop in this thread, where asyncio.run is refused.
    if not Path(CHROMIUM).is_file():
        pytest.skip(
            "Chromium absent (paquet Debian « chromium ») : tests dans le navigateur ignorés"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    # A laptop screen; French locale.
    context = browser.new_context(
        base_url=live_server, viewport={"width": 1366, "height": 800}, locale="fr-FR"
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def assert_accessible(page: Any) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    if not AXE_JS.is_file():
        pytest.skip("axe-core absent (make test l'installe avec npm) : contrôle ignoré")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the page's CSP (no inline script) holds.
        page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;true")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [v for v in result["violations"] if v["impact"] in {"serious", "critical"}]
    assert not bad, [
        (v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in bad
    ]


IMAGES_LOADED = """() => Promise.race([
  Promise.all([...document.images].map((img) => {
    img.loading = "eager";
    return img.complete ? null : new Promise((done) => {
      img.addEventListener("load", done);
      img.addEventListener("error", done);
    });
  })),
  new Promise((done) => setTimeout(done, 10000)),
])"""


def shoot(page: Any, name: str, tmp_dir: Path | None = None) -> None:
    """Check the page with axe-core, then screenshot it (into the docs under `make screenshots`)."""
    assert_accessible(page)
    # Lazy images below the fold would otherwise be captured blank, or not, by chance.
    page.evaluate(IMAGES_LOADED)
    stable = _stable_png()
    png = page.screenshot(
        full_page=True, mask=[page.locator(stable.MASK_SELECTOR)], mask_color=stable.MASK_COLOR
    )
    assert png.startswith(b"\x89PNG")
    if os.environ.get("ATTRITION_SCREENSHOTS"):
        stable.write_if_changed(SHOTS / name, png)
    else:
        (Path(tempfile.gettempdir()) / name).write_bytes(png)


def _stable_png() -> Any:
    """scripts/stable_png.py (rewrite a capture only when it really changed)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "stable_png", PROJECT_ROOT / "scripts" / "stable_png.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def score_stored_employee(page: Any, employee_id: int) -> tuple[int, str]:
    """Score a stored employee from the form; check the result page reads right; its id and %."""
    page.get_by_label("Identifiant de l'employé").fill(str(employee_id))
    page.locator("form", has=page.get_by_label("Identifiant de l'employé")).get_by_role(
        "button", name="Calculer le risque"
    ).click()
    page.wait_for_url(re.compile(r".*/app/predictions/\d+$"))
    prediction_id = int(page.url.rsplit("/", 1)[1])
    probability = page.get_by_test_id("probabilite").inner_text()
    assert re.fullmatch(r"\d{1,3},\d\s%", probability), probability
    assert page.get_by_test_id("niveau").inner_text() in wording.RISK_LABELS.values()
    reading = page.get_by_test_id("lecture").inner_text()
    assert "seuil d'alerte" in reading and probability in reading, reading
    return prediction_id, probability


def sign_in(page: Any, person: Person, password: str | None = None) -> None:
    page.goto("/app")
    assert page.url.endswith("/app/connexion")
    page.get_by_label("Identifiant").fill(person.login)
    page.get_by_label("Mot de passe").fill(password or person.password)
    page.get_by_role("button", name="Se connecter").click()


def test_a_person_signs_in_with_a_password_scores_and_signs_out_for_good(
    browser: Any, page: Any, live_server: str, database: Database
) -> None:
    """The HR user's front door, end to end: /, a one-time password, a prediction, sign-out;
    the session cookie copied before sign-out opens nothing afterwards."""
    person = create_person(database, "rh-navigateur", "predicteur", ready=False)
    page.goto("/")  # the front door sends a browser to the web interface
    page.wait_for_url("**/app/connexion")
    page.get_by_label("Identifiant").fill(person.login)
    page.get_by_label("Mot de passe").fill("Pas-le-bon-mot-2")
    page.get_by_role("button", name="Se connecter").click()
    alert = page.get_by_role("alert").inner_text()
    assert "Identifiant ou mot de passe incorrect." in alert and "Clé API" not in alert
    assert_accessible(page)  # the sign-in page with its error

    sign_in(page, person)  # the one-time password given by the admin
    page.wait_for_url("**/app/mot-de-passe")
    assert page.get_by_role("heading", level=1).inner_text() == "Choisissez votre mot de passe"
    assert_accessible(page)
    page.get_by_label("Mot de passe actuel").fill(person.password)
    page.get_by_label("Nouveau mot de passe", exact=True).fill(PASSWORD)
    page.get_by_label("Confirmation du nouveau mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Enregistrer le mot de passe").click()
    page.wait_for_url("**/app/prediction")
    assert "Mot de passe enregistré." in page.get_by_role("status").inner_text()
    session = next(c for c in page.context.cookies() if c["name"] == "attrition_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict" and not session["secure"]

    prediction_id, probability = score_stored_employee(page, 2)
    with database.owner_engine().connect() as conn:
        recorded = conn.execute(
            text(
                "SELECT i.source, i.id_employee, k.name, p.probability FROM predictions p "
                "JOIN prediction_inputs i ON i.id = p.input_id "
                "JOIN api_keys k ON k.id = i.api_key_id WHERE p.id = :id"
            ),
            {"id": prediction_id},
        ).one()
    assert tuple(recorded[:3]) == ("web", 2, f"compte:{person.login}")
    shown = float(probability.replace(",", ".").removesuffix("\u00a0%").strip())
    assert abs(shown - 100 * recorded.probability) < 0.06

    copied = page.context.cookies()
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url("**/app/connexion")
    assert "Vous êtes déconnecté(e)." in page.get_by_role("status").inner_text()
    # Someone who copied the cookie before sign-out is refused with it afterwards.
    thief = browser.new_context(base_url=live_server, locale="fr-FR")
    try:
        thief.add_cookies(copied)
        tab = thief.new_page()
        tab.goto(f"/app/predictions/{prediction_id}")
        tab.wait_for_url("**/app/connexion")
        assert "Votre session est terminée ou a expiré" in tab.get_by_role("status").inner_text()
        tab.goto("/app/historique")
        assert tab.url.endswith("/app/connexion")
    finally:
        thief.close()


def test_predicteur_scores_and_finds_it_in_the_history(
    page: Any, people: People, database: Database
) -> None:
    page.goto("/app/connexion")
    shoot(page, "connexion.png")
    page.keyboard.press("Tab")  # the skip link comes first for keyboard users
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"

    page.get_by_label("Identifiant").fill(people.predicteur.login)
    page.get_by_label("Mot de passe").fill("mauvais")
    page.get_by_role("button", name="Se connecter").click()
    assert "Identifiant ou mot de passe incorrect." in page.get_by_role("alert").inner_text()

    sign_in(page, people.predicteur)
    page.wait_for_url("**/app/prediction")
    assert "mot_de_passe=" not in page.url and PASSWORD not in page.url
    cookies = page.context.cookies()
    session = next(c for c in cookies if c["name"] == "attrition_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert PASSWORD not in session["value"]

    prediction_id, probability = score_stored_employee(page, 1)
    factors = page.get_by_test_id("facteurs").locator("tbody th").all_inner_texts()
    people_labels = {label for label, _ in YES_NO_FACTORS.values()}
    assert factors and set(factors) <= set(FEATURE_LABELS.values()) | people_labels
    effects = page.get_by_test_id("facteurs").locator("tbody .effect").all_inner_texts()
    assert set(effects) <= {"augmente le risque", "diminue le risque"}
    assert page.locator(".bar").count() == len(factors)
    shoot(page, "resultat.png")

    page.get_by_role("link", name="Voir l'historique").click()
    page.wait_for_url("**/app/historique")
    history = page.get_by_test_id("historique")
    row = history.locator("tr", has=page.get_by_role("link", name=f"n° {prediction_id}"))
    assert row.count() == 1 and "interface web" in row.inner_text()
    page.get_by_label("Identifiant de l'employé").fill("1")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_url("**/app/historique?*id_employee=1*")
    assert page.get_by_role("link", name=f"n° {prediction_id}").count() == 1
    shoot(page, "historique.png")

    with database.owner_engine().connect() as conn:
        recorded = conn.execute(
            text(
                "SELECT i.source, i.id_employee, k.name, p.probability FROM predictions p "
                "JOIN prediction_inputs i ON i.id = p.input_id "
                "JOIN api_keys k ON k.id = i.api_key_id "
                "WHERE p.id = :id AND i.source = 'web'"
            ),
            {"id": prediction_id},
        ).one()
    assert recorded.id_employee == 1 and recorded.name == people.predicteur.audit_name
    shown = float(probability.replace(",", ".").removesuffix("\u00a0%").strip())
    assert abs(shown - 100 * recorded.probability) < 0.06


def prefill_example(page: Any) -> None:
    """Follow the example link and wait for the new page: filling before it loads races it.

    The link is a navigation, and ``click()`` returns once it starts: a ``fill()`` made then lands
    on the old form, which the loading page replaces (CI saw the cross-field message empty).
    """
    page.get_by_role("link", name="Pré-remplir avec un exemple").click()
    page.wait_for_url(re.compile(r".*/app/prediction\?exemple=1$"))
    page.wait_for_load_state()


def test_predicteur_fills_the_form(page: Any, people: People, database: Database) -> None:
    sign_in(page, people.predicteur)
    page.wait_for_url("**/app/prediction")
    prefill_example(page)
    assert page.get_by_label("Âge").input_value() == "41"
    page.get_by_label("Âge").fill("29")
    page.get_by_label("Heures supplémentaires").select_option("Oui")
    shoot(page, "formulaire.png")
    page.locator("form", has=page.get_by_label("Âge")).get_by_role(
        "button", name="Calculer le risque"
    ).click()
    page.wait_for_url(re.compile(r".*/app/predictions/\d+$"))
    prediction_id = int(page.url.rsplit("/", 1)[1])
    page.get_by_text("Valeurs envoyées au modèle").click()
    assert "29" in page.locator("details", has_text="Valeurs envoyées au modèle").inner_text()
    with database.owner_engine().connect() as conn:
        age, source = conn.execute(
            text(
                "SELECT i.age, i.source FROM predictions p "
                "JOIN prediction_inputs i ON i.id = p.input_id WHERE p.id = :id"
            ),
            {"id": prediction_id},
        ).one()
    assert (age, source) == (29, "web")


def test_auditeur_reads_but_cannot_score(
    page: Any, keys: Keys, people: People, database: Database, live_server: str
) -> None:
    sign_in(page, people.auditeur)
    page.wait_for_url("**/app/historique")
    navigation = page.get_by_role("navigation", name="Navigation principale")
    assert navigation.get_by_role("link", name="Prédire").count() == 0
    page.goto("/app/prediction")
    alert = page.get_by_role("alert").inner_text()
    assert "Le rôle « auditeur » ne permet pas cette opération" in alert
    assert page.get_by_role("heading", level=1).inner_text().startswith("Accès refusé")

    navigation.get_by_role("link", name="Modèle").click()
    page.wait_for_url("**/app/modele")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Le modèle en service")
    shoot(page, "modele.png")

    page.get_by_role("navigation", name="Navigation principale").get_by_role(
        "link", name="Dérive"
    ).click()
    page.wait_for_url("**/app/derive")
    page.get_by_label("Entrées reçues depuis le").fill("2000-01-01")
    page.get_by_role("button", name="Actualiser").click()
    page.wait_for_url("**/app/derive?depuis=2000-01-01")
    assert page.get_by_test_id("verdict").inner_text().startswith("Verdict")
    assert page.get_by_test_id("psi").locator("tbody tr").count() == 27

    # A moderately shifted population (one employee in four put on overtime), scored through
    # the API of the same server: the page says "à surveiller" and names the variable.
    with database.owner_engine().connect() as conn:
        since = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        rows = [
            dict(r)
            for r in conn.execute(
                text(f"SELECT {', '.join(FEATURE_NAMES)} FROM employee_features")
            ).mappings()
        ]
    rows = random.Random(7).sample(rows, 600)
    rows = [{**r, "heures_supplementaires": True} if i % 4 == 0 else r for i, r in enumerate(rows)]
    created = httpx.post(
        f"{live_server}/v1/predictions/batch",
        json={"employes": rows},
        headers={"Authorization": f"Bearer {keys.predicteur}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    page.goto("/app/derive?" + urlencode({"depuis": since.isoformat()}))
    verdict = page.get_by_test_id("verdict").inner_text()
    assert "à surveiller" in verdict and "Heures supplémentaires" in verdict
    first = page.get_by_test_id("psi").locator("tbody tr").first.inner_text()
    assert first.startswith("Heures supplémentaires") and "à surveiller" in first
    shoot(page, "derive.png")


def test_error_pages_and_form_errors_are_accessible(page: Any, people: People) -> None:
    page.goto("/app/connexion")
    page.get_by_role("button", name="Se connecter").click()
    assert_accessible(page)
    sign_in(page, people.predicteur)
    page.wait_for_url("**/app/prediction")
    prefill_example(page)
    page.get_by_label("Âge").fill("80")
    # The server's answer to what the browser would stop: its own checks are switched off.
    page.evaluate("document.querySelectorAll('form').forEach(f => { f.noValidate = true; })")
    page.locator("form", has=page.get_by_label("Âge")).get_by_role(
        "button", name="Calculer le risque"
    ).click()
    page.wait_for_load_state()
    assert "champ(s) à corriger" in page.get_by_role("alert").first.inner_text()
    assert_accessible(page)
    page.goto("/app/predictions/999999999")
    assert_accessible(page)


def test_keyboard_alone_scores_a_stored_employee(page: Any, people: People) -> None:
    sign_in(page, people.predicteur)
    page.wait_for_url("**/app/prediction")
    page.goto("/app/prediction")
    for _ in range(40):  # Tab until the employee id field has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "f-dossier":
            break
    assert page.evaluate("document.activeElement.id") == "f-dossier"
    page.keyboard.type("1")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/app/predictions/\d+$"))
    assert "seuil d'alerte" in page.get_by_test_id("lecture").inner_text()


def test_small_screen_has_no_horizontal_scroll(
    browser: Any, live_server: str, people: People
) -> None:
    context = browser.new_context(
        base_url=live_server, viewport={"width": 390, "height": 844}, locale="fr-FR"
    )
    tab = context.new_page()
    try:
        sign_in(tab, people.predicteur)
        tab.wait_for_url("**/app/prediction")
        tab.get_by_label("Identifiant de l'employé").fill("1")
        tab.locator("form", has=tab.get_by_label("Identifiant de l'employé")).get_by_role(
            "button", name="Calculer le risque"
        ).click()
        tab.wait_for_url(re.compile(r".*/app/predictions/\d+$"))
        for path in (tab.url, "/app/prediction", "/app/historique", "/app/modele"):
            tab.goto(path)
            width = tab.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
    finally:
        context.close()


def test_cross_field_rule_is_shown_while_typing(page: Any, people: People) -> None:
    sign_in(page, people.predicteur)
    page.wait_for_url("**/app/prediction")
    prefill_example(page)
    page.get_by_label("Âge").fill("20")
    page.get_by_label("Années d'expérience totale").fill("10")
    message = page.locator("#x-annees_experience_totale")
    assert "l'âge moins 14 ans (6)" in message.inner_text()
    field = page.get_by_label("Années d'expérience totale")
    assert field.get_attribute("aria-invalid") == "true"
    assert not page.evaluate("document.getElementById('f-annees_experience_totale').validity.valid")
    page.get_by_label("Années d'expérience totale").fill("5")
    assert message.inner_text() == ""
    assert page.evaluate("document.getElementById('f-annees_experience_totale').validity.valid")


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import subprocess

    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [str(PROJECT_ROOT / ".venv" / "bin" / "mkdocs"), "build", "--quiet", "-d", str(site)],
        cwd=PROJECT_ROOT,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    return site


def test_docs_site_opens_from_file_offline(browser: Any, built_site: Path) -> None:
    npm_copy = PROJECT_ROOT / ".cache" / "mermaid" / "node_modules" / "mermaid" / "dist"
    if not (npm_copy / "mermaid.min.js").is_file():
        pytest.skip("Mermaid absent de .cache/mermaid (make docs l'installe avec npm)")
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    refused: list[str] = []

    def offline(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    tab = context.new_page()
    try:
        tab.goto((built_site / "index.html").as_uri())
        tab.get_by_role("link", name="Installation et configuration").first.click()
        tab.wait_for_load_state()
        assert tab.url.endswith("/installation.html"), tab.url
        assert tab.get_by_role("heading", level=1).count() == 1
        tab.goto((built_site / "architecture.html").as_uri())
        # Material draws each diagram in a closed shadow root of a div that replaces the
        # <pre>: a tall div without the diagram's source text means it was rendered.
        tab.wait_for_function(
            "() => { const d = document.querySelector('div.mermaid');"
            " return d && d.getBoundingClientRect().height > 100; }",
            timeout=20_000,
        )
        assert "flowchart" not in tab.locator("div.mermaid").first.inner_text()
    finally:
        context.close()
    assert not refused, refused


def test_admin_creates_an_account_and_ends_a_session(page: Any, people: People) -> None:
    sign_in(page, people.admin)
    page.wait_for_url("**/app/prediction")
    navigation = page.get_by_role("navigation", name="Navigation principale")
    navigation.get_by_role("link", name="Comptes").click()
    page.wait_for_url("**/app/comptes")
    page.get_by_label("Identifiant").fill("rh.nouvelle")
    page.get_by_label("Rôle").select_option("auditeur")
    page.get_by_role("button", name="Créer le compte").click()
    given = page.get_by_test_id("mot-de-passe").inner_text()
    assert re.fullmatch(r"[A-Za-z0-9]{5}(-[A-Za-z0-9]{5}){3}", given), given
    assert "rh.nouvelle" in page.get_by_test_id("comptes").inner_text()
    assert_accessible(page)  # with the one-time password shown
    page.goto("/app/comptes")
    assert page.get_by_test_id("mot-de-passe").count() == 0  # shown once only
    assert_accessible(page)
    sessions = page.get_by_test_id("sessions")
    mine = sessions.locator("tr", has_text="(cette session)")
    assert mine.count() == 1
    mine.get_by_role("button", name="Mettre fin").click()
    page.wait_for_url("**/app/connexion")  # the admin ended the admin's own session


def test_outcome_page_is_accessible_with_and_without_errors(page: Any, database: Database) -> None:
    person = create_person(database, "rh-axe", "rh")
    sign_in(page, person)
    page.wait_for_url(re.compile(r".*/app/(?!connexion)[a-z-]+$"))
    page.goto("/app/issue")
    assert page.get_by_role("heading", level=1).count() == 1
    assert_accessible(page)
    page.evaluate("document.querySelectorAll('form').forEach(f => { f.noValidate = true; })")
    page.get_by_label("Identifiant de l'employé").fill("-3")
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_load_state()
    assert "Identifiant invalide" in page.locator("main").inner_text()
    assert_accessible(page)
