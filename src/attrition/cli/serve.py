"""``attrition serve`` (everything up, then the API) and ``attrition openapi``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from attrition.cli.common import domain_errors, load_settings, say
from attrition.config import get_settings


def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface d'écoute (défaut : HOST ou 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (défaut : PORT ou 8000).")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Processus (défaut : 1 en dev ; en prod, les cœurs du quota CPU)."),
    ] = None,
    no_train: Annotated[
        bool, typer.Option("--no-train", help="Ne pas entraîner au démarrage.")
    ] = False,
) -> None:
    """Prépare tout (base, données, modèle, clé admin) puis sert l'API avec uvicorn."""
    # First thing: a stop (SIGTERM, `docker stop`) during the start-up (migrations, loading,
    # training: minutes) unwinds like Ctrl-C, so the embedded PostgreSQL is shut down cleanly
    # (pgserver's exit handler) instead of being killed with the container. After its
    # graceful shutdown uvicorn raises the SIGTERM it caught again: this handler ends the
    # process there too (status 0, not 143), after the database is released.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    settings = load_settings()
    from attrition.api.server import claim_generation

    host = host or os.environ.get("HOST") or settings.host
    port = port or int(os.environ.get("PORT") or settings.port)
    with domain_errors():
        # One generation at a time: refuse at once, before PostgreSQL or the model are touched,
        # when the address or the embedded database's folder is in use (see api/server.py).
        generation = claim_generation(
            host, port, None if settings.database_url else settings.resolved_pgdata
        )
    if not settings.database_url:
        # PostgreSQL starts while the imports below run; boot() joins it (see db/embedded.py).
        from attrition.db.embedded import start_in_background

        start_in_background(settings.resolved_pgdata)
    from attrition.api.server import serve as serve_workers
    from attrition.bootstrap import boot
    from attrition.logs import server_log_config

    with domain_errors():
        report = boot(settings, say, train=not no_train)
    db = report.database
    from attrition.security.secrets import audit_key_text

    # The workers connect as the application role only: the owner's URL leaves the
    # environment they inherit (a compromised worker cannot escape least privilege), and
    # they get the audit key to MAC what they answer.
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("ATTRITION_DATABASE_URL", None)
    os.environ["ATTRITION_APP_DATABASE_URL"] = db.app_dsn
    os.environ["ATTRITION_AUDIT_KEY"] = audit_key_text(settings)
    get_settings.cache_clear()
    if db.embedded is not None:
        os.environ["ATTRITION_EMBEDDED_PGDATA"] = str(db.embedded.pgdata)
    count = workers or (settings.workers if settings.is_prod else 1)
    from attrition.api.routers.index import banner

    for line in banner(host, port, docs=settings.api.expose_docs):
        say(line)
    say(f"API sur http://{host}:{port} — {count} processus. Ctrl-C pour arrêter.")
    workers_dir = None
    if count > 1:
        # A fresh folder per run, shared by the workers: their metrics add up there (see
        # attrition.monitoring.metrics) and their rate limits are counted together (see
        # attrition.security.limits); nothing survives into the next run.
        workers_dir = Path(tempfile.mkdtemp(prefix="attrition-workers-"))
        os.environ["ATTRITION_WORKERS_DIR"] = str(workers_dir)
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            (workers_dir / "metrics").mkdir()
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(workers_dir / "metrics")
    stopped_cleanly = False
    try:
        # One listening socket per worker (SO_REUSEPORT) so that connections are spread over
        # the workers (see attrition.api.server); plain uvicorn.run with one worker.
        serve_workers(
            "attrition.api.app:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=count,
            pin_workers=settings.pin_workers,
            log_level=settings.log_level.lower(),
            log_config=server_log_config(settings),  # French, the app's format (JSON in prod)
            # The app reads X-Forwarded-For itself, from ATTRITION_API__TRUSTED_PROXIES only
            # (uvicorn's default would trust any local peer).
            proxy_headers=False,
            # The request line and headers are bounded (431) by this parser subclass.
            http="attrition.api.protocol:BoundedHttpToolsProtocol",
            timeout_graceful_shutdown=10,
            access_log=False,  # the app writes its own access line (no query string, no IP)
        )
        stopped_cleanly = True
    finally:
        if workers_dir is not None:
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR") == str(workers_dir / "metrics"):
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR")
            os.environ.pop("ATTRITION_WORKERS_DIR", None)
            shutil.rmtree(workers_dir, ignore_errors=True)
        db.stop()
        if generation is not None:
            generation.close()
        say("Serveur arrêté proprement." if stopped_cleanly else "Serveur arrêté sur une erreur.")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def openapi_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Fichier de sortie.")
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Page Markdown à régénérer.")
    ] = None,
) -> None:
    """Exporte le schéma OpenAPI de l'API (docs/openapi.json) et sa référence Markdown."""
    from attrition.api.app import create_app

    text = json.dumps(create_app().openapi(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if markdown is not None:
        from attrition.api.openapi_md import update_markdown

        # Rendered from the export itself (sorted keys), as the drift test reads it.
        update_markdown(markdown, json.loads(text))
        say(f"Référence de l'API écrite dans {markdown}")
    if output:
        output.write_text(text, encoding="utf-8")
        say(f"Schéma OpenAPI écrit dans {output}")
    else:
        sys.stdout.write(text)
