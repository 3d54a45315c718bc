"""The front door: ``/`` sends a browser to the web interface and an API client to an index.

A browser asks for HTML (``Accept: text/html``): it is redirected to ``/app``. Anything else
(``curl``, a script) gets a small JSON index of the service's entry points; ``/v1`` lists the
API's resources. Neither needs a key, and neither touches the database.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse

from attrition import __version__
from attrition.config import PROJECT_ROOT

router = APIRouter(include_in_schema=False)

#: The documentation site built by ``make docs``, served under /guide/ when it exists.
SITE_DIR = PROJECT_ROOT / "site"


def wants_html(accept: str) -> bool:
    """Whether an ``Accept`` header asks for HTML (as browsers do), not only ``*/*`` or JSON."""
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        if media.strip().lower() in ("text/html", "application/xhtml+xml"):
            quality = params.strip().lower().removeprefix("q=")
            try:
                return not params.strip() or float(quality) > 0
            except ValueError:
                return True
    return False


def entry_points(request: Request) -> dict[str, str]:
    app = request.app
    links = {"interface": "/app", "api": "/v1", "sante": "/health", "disponibilite": "/ready"}
    if app.openapi_url:
        links.update(documentation="/docs", openapi=app.openapi_url)
    if getattr(app.state, "guide", False):
        links["guide"] = "/guide/"
    return links


@router.api_route("/", methods=["GET", "HEAD"], name="front_door")
async def front_door(request: Request) -> Any:
    """Browsers go to the web interface; API clients get the index of entry points."""
    if wants_html(request.headers.get("accept", "")):
        return RedirectResponse("/app", status_code=303)
    return {
        "service": "Futurisys — API d'attrition",
        "version": __version__,
        "message": (
            "Interface web pour les équipes RH : /app. API : /v1 (clé API requise), "
            "documentation interactive : /docs."
        ),
        "liens": entry_points(request),
    }


@router.api_route("/v1", methods=["GET", "HEAD"], name="api_index")
async def api_index(request: Request) -> Any:
    """The API's resources (each path once, with its methods); a key is needed to use them."""
    # The OpenAPI description (built once, cached by FastAPI) is the list of public routes.
    described = request.app.openapi().get("paths", {})
    paths = {
        path: {method.upper() for method in operations}
        for path, operations in described.items()
        if path.startswith("/v1/")
    }
    return {
        "version": __version__,
        "authentification": "Authorization: Bearer <clé API> ou X-API-Key",
        "documentation": "/docs" if request.app.openapi_url else None,
        "ressources": [
            {"chemin": path, "methodes": sorted(methods)} for path, methods in sorted(paths.items())
        ],
    }


def install_guide(app: Any) -> bool:
    """Serve the built documentation site under /guide/ (when ``make docs`` has built it)."""
    if not (SITE_DIR / "index.html").is_file():
        return False
    from starlette.staticfiles import StaticFiles

    # "/guide" alone is redirected to "/guide/" by the router (redirect_slashes).
    app.mount("/guide", StaticFiles(directory=SITE_DIR, html=True), name="guide")
    return True


def banner(host: str, port: int, *, docs: bool = True, guide: bool | None = None) -> list[str]:
    """The start-up lines that tell where the interface, the API docs and the docs site are."""
    # A wildcard address is not one a browser opens: show the loopback one.
    wildcard = host in ("", "0.0.0.0")  # noqa: S104
    shown = "127.0.0.1" if wildcard else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    base = f"http://{shown}:{port}"
    built = (SITE_DIR / "index.html").is_file() if guide is None else guide
    lines = [f"Interface web (équipes RH) : {base}/app"]
    if docs:
        lines.append(f"Documentation de l'API (Swagger UI) : {base}/docs")
    lines.append(
        f"Site de documentation : {base}/guide/"
        if built
        else "Site de documentation : lancez « make docs » pour le construire (servi ensuite "
        f"sur {base}/guide/)"
    )
    return lines
