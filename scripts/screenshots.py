"""Screenshots of the API documentation and of the docs site (``make screenshots``).

Starts the service on a temporary embedded PostgreSQL (``demo_service``), serves it with
uvicorn on 127.0.0.1 (a free port), and drives headless Chromium (Playwright, the Debian
``chromium``; never ``playwright install``) through Swagger UI (key entered with
« Authorize », ``POST /v1/predictions`` executed), ReDoc, and the MkDocs site built into a
temporary folder and served by ``python -m http.server`` on loopback. PNG files go to
``docs/img/captures/``.

Nothing leaves the machine: every request to another host is refused. Material for MkDocs
loads Mermaid from a CDN (unpkg); that one request is answered with the copy installed by npm
in ``.cache/node`` (``make slides`` installs it) when present, otherwise the diagrams stay
as text, and the script says so.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from demo_service import demo_service, free_port, live_server, say
from stable_png import MASK_COLOR, MASK_SELECTOR, write_if_changed

from attrition.config import PROJECT_ROOT

OUT = PROJECT_ROOT / "docs" / "img" / "captures"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MERMAID_JS = (
    PROJECT_ROOT / ".cache" / "node" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
)
VIEWPORT = {"width": 1366, "height": 900}


class Offline:
    """Refuse every request that is not for loopback; serve Mermaid from the npm copy."""

    def __init__(self) -> None:
        self.refused: set[str] = set()
        self.mermaid_served = False

    def __call__(self, route: Any) -> None:
        url = route.request.url
        host = urlparse(url).hostname or ""
        if host in {"127.0.0.1", "localhost"} or url.startswith("data:"):
            route.continue_()
        elif "mermaid" in url and url.endswith(".js") and MERMAID_JS.is_file():
            self.mermaid_served = True
            route.fulfill(path=str(MERMAID_JS), content_type="application/javascript")
        else:
            self.refused.add(host)
            route.abort()


@contextmanager
def docs_site() -> Iterator[str]:
    """The MkDocs site built into a temporary folder and served on loopback."""
    with tempfile.TemporaryDirectory(prefix="attr-site-") as site:
        say("Construction du site de documentation (mkdocs build)…")
        subprocess.run(
            [str(PROJECT_ROOT / ".venv" / "bin" / "mkdocs"), "build", "--quiet", "-d", site],
            cwd=PROJECT_ROOT,
            check=True,
            env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        )
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=site,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the documentation server did not start") from None
                    time.sleep(0.1)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=10)


WRITTEN: list[str] = []


def shot(target: Any, path: Path, **options: Any) -> None:
    """Capture ``target`` (page or element); rewrite ``path`` only if the image changed."""
    page = getattr(target, "page", target)
    png = target.screenshot(mask=[page.locator(MASK_SELECTOR)], mask_color=MASK_COLOR, **options)
    if write_if_changed(path, png):
        WRITTEN.append(path.name)


def swagger(page: Any, base: str, key: str, out: Path) -> None:
    page.goto(f"{base}/docs")
    page.wait_for_selector(".swagger-ui .information-container")
    page.wait_for_selector(".opblock")
    shot(page, out / "swagger.png")

    page.locator(".scheme-container button.authorize").click()
    modal = page.locator(".modal-ux")
    modal.wait_for()
    modal.locator("input").first.fill(key)
    modal.locator(".auth-btn-wrapper button.authorize").first.click()
    modal.locator("button.btn-done").first.wait_for()
    shot(modal, out / "swagger_authorize.png")
    modal.locator("button.btn-done").first.click()

    operation = page.locator(
        '.opblock-post:has(.opblock-summary-path[data-path="/v1/predictions"])'
    ).first
    operation.locator(".opblock-summary").click()
    try_it = operation.locator("button.try-out__btn")
    if try_it.count() and "Cancel" not in try_it.inner_text():
        try_it.click()
    operation.evaluate("element => element.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    shot(page, out / "swagger_prediction.png")
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response-col_status").first
    status.wait_for()
    operation.locator(".request-url").evaluate(
        "element => element.scrollIntoView({block: 'start'})"
    )
    page.wait_for_timeout(300)
    shot(page, out / "swagger_reponse.png")
    # The response body alone, legible on a slide.
    box = operation.locator(".live-responses-table tr.response").first.bounding_box()
    clip = {"x": box["x"], "y": box["y"], "width": min(box["width"], 800), "height": 560}
    shot(page, out / "swagger_reponse_corps.png", clip=clip)


def redoc(page: Any, base: str, out: Path) -> None:
    page.goto(f"{base}/redoc")
    page.wait_for_selector(".api-content h1", timeout=30_000)
    page.wait_for_timeout(500)
    shot(page, out / "redoc.png")
    menu = page.locator(".menu-content")
    menu.get_by_text("prédictions", exact=True).click()
    menu.get_by_text("Prédire le risque de départ d'un employé").click()
    page.wait_for_timeout(800)
    shot(page, out / "redoc_prediction.png")


def site_pages(page: Any, base: str, out: Path) -> bool:
    """Home page, model card, database page with its ER diagram; True if Mermaid rendered."""
    page.goto(f"{base}/")
    page.wait_for_selector("article h1")
    page.wait_for_timeout(800)
    shot(page, out / "site_accueil.png")

    page.goto(f"{base}/modele.html")
    page.wait_for_selector("article h1")
    shot(page, out / "site_modele.png")
    page.locator("#figures").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    shot(page, out / "site_modele_figures.png")

    page.goto(f"{base}/base-de-donnees.html")
    page.wait_for_selector("article h1")
    # Material replaces <pre class="mermaid"> with a rendered <div class="mermaid">.
    try:
        page.wait_for_selector("div.mermaid", timeout=15_000)
        rendered = True
    except Exception:
        rendered = False
    diagram = page.locator("div.mermaid, pre.mermaid").first
    diagram.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    shot(page, out / "site_base_de_donnees.png")
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUT, help="output folder")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).is_file():
        say("Chromium absent (paquet Debian « chromium ») : aucune capture.")
        return 1
    from playwright.sync_api import sync_playwright

    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    offline = Offline()
    # The demo service (its keys are created with asyncio.run) starts before Playwright,
    # whose sync API keeps an event loop running in this thread.
    with demo_service() as demo, live_server(demo) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport=VIEWPORT, locale="fr-FR")
        context.set_default_timeout(20_000)
        context.route("**/*", offline)
        page = context.new_page()
        with docs_site() as site:
            say("Captures du site de documentation…")
            rendered = site_pages(page, site, out)
        say(f"Service sur {base} : captures de Swagger UI et de ReDoc…")
        swagger(page, base, demo.keys["predicteur"], out)
        redoc(page, base, out)
        context.close()
        browser.close()
    if rendered and offline.mermaid_served:
        say(f"Mermaid rendu avec la copie locale ({MERMAID_JS.relative_to(PROJECT_ROOT)}).")
    elif rendered:
        say("Mermaid rendu avec la copie servie par le site.")
    elif not rendered:
        say("Mermaid non rendu (le site le charge depuis un CDN) : diagrammes capturés en texte.")
    if offline.refused:
        say(f"Requêtes externes refusées : {', '.join(sorted(offline.refused))}.")
    shots = sorted(p.name for p in out.glob("*.png"))
    changed = ", ".join(sorted(WRITTEN)) or "aucune (images identiques aux captures commitées)"
    say(
        f"{len(shots)} captures dans {out} en {time.perf_counter() - started:.0f} s ; "
        f"réécrites : {changed}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
