"""The application factory: wires settings, database pool, model runtime and routers.

Nothing is created at import time. ``create_app(settings)`` returns an app whose lifespan opens
the psycopg pool (as the least-privilege application role), loads the active model, and starts
a small task that follows model activations; on shutdown it drains and closes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.routing import BaseRoute

from attrition import __version__
from attrition.api import problems, web
from attrition.api.lane import PredictionLane
from attrition.api.middleware import EdgeMiddleware
from attrition.api.rejections import RejectionRecorder
from attrition.api.responses import FastJSONResponse
from attrition.api.routers import audit as audit_router
from attrition.api.routers import employees, health, index, keys, model, predictions
from attrition.api.routers import monitoring as monitoring_router
from attrition.config import Settings, get_settings
from attrition.db import chain
from attrition.db import pool as pool_check
from attrition.db.engine import Database, resolve_database
from attrition.db.writer import GroupCommitWriter
from attrition.model.runtime import ModelRuntime
from attrition.monitoring.metrics import Metrics
from attrition.security import secrets
from attrition.security.clients import Authenticator
from attrition.security.limits import bucket
from attrition.services.predictions import PredictionService

log = logging.getLogger(__name__)

DESCRIPTION = """
API de prédiction de l'attrition des employés (Futurisys, données TechNova).

* **Authentification** : clé API (`Authorization: Bearer ftr_…` ou `X-API-Key`). Bouton
  « Authorize » ci-dessus.
* **Rôles** : `predicteur` (prédire, lire ses prédictions), `auditeur` (lire toutes les
  prédictions et les employés, sans prédire), `admin` (gérer les clés et le modèle).
* **Traçabilité** : chaque entrée envoyée au modèle et chaque sortie sont enregistrées dans
  PostgreSQL avant la réponse ; chaque réponse porte un en-tête `X-Request-ID`.
* **Erreurs** : format RFC 9457 (`application/problem+json`), message en français, liste des
  champs en cause.
* Une prédiction est une aide à la décision RH, jamais une décision automatisée (RGPD, art. 22).
"""


async def _follow_model(app: FastAPI, interval_s: float) -> None:
    """Pick up `attrition model activate` in this process without a restart."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            async with app.state.pool.connection(timeout=2.0) as conn:
                await app.state.runtime.refresh(conn)
        except Exception as exc:
            log.debug("model refresh skipped: %s", type(exc).__name__)


def _install_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc served with their assets from the package: no CDN, strict CSP."""
    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount("/static-docs", StaticFiles(directory=assets), name="static-docs")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Futurisys — API d'attrition (Swagger UI)",
            swagger_js_url="/static-docs/swagger-ui-bundle.js",
            swagger_css_url="/static-docs/swagger-ui.css",
            swagger_favicon_url="/static-docs/favicon.png",
            swagger_ui_parameters={"tryItOutEnabled": True, "persistAuthorization": False},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="Futurisys — API d'attrition (ReDoc)",
            redoc_js_url="/static-docs/redoc.standalone.js",
            redoc_favicon_url="/static-docs/favicon.png",
            with_google_fonts=False,
        )


#: The background sealer's transactions: short ones, a little apart, so that sealing what a
#: busy round left does not hold PostgreSQL for tens of milliseconds in one go (measured at
#: concurrency 32: p99 of a pass up to 55 ms with batches of 5,000 back to back).
SEAL_BATCH = 1000
SEAL_PAUSE_S = 0.01


async def _seal_audit(
    app: FastAPI, key: chain.AuditKey, interval_s: float, checkpoints: Path | None
) -> None:
    """Extend the audit chain beside the prediction path, never inside it; publish the head."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            async with app.state.pool.connection(timeout=2.0) as conn:
                _, checkpoint = await chain.seal_pending(
                    conn, key, limit=SEAL_BATCH, pause_s=SEAL_PAUSE_S
                )
            if checkpoint is not None:
                await asyncio.to_thread(chain.publish, checkpoint, checkpoints)
        except (psycopg.OperationalError, PoolTimeout) as exc:  # database away: next tick
            log.debug("audit sealing skipped: %s", type(exc).__name__)
        except Exception as exc:  # retried at the next tick, but worth a look
            log.warning(
                "scellement de la trace d'audit en échec : %s : %s", type(exc).__name__, exc
            )


def _describe(app: FastAPI, routes: list[BaseRoute]) -> dict[str, Any]:
    """FastAPI's OpenAPI description of ``app``, listing ``routes`` in their given order.

    The same call as ``FastAPI.openapi`` (its documented way to customise the description),
    with the routes in the order ``create_app`` includes them, not the order routing tries
    them in (:func:`_try_first`).
    """
    return get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        terms_of_service=app.terms_of_service,
        contact=app.contact,
        license_info=app.license_info,
        routes=routes,
        webhooks=app.webhooks.routes,
        tags=app.openapi_tags,
        servers=app.servers,
        separate_input_output_schemas=app.separate_input_output_schemas,
        external_docs=app.openapi_external_docs,
    )


def _try_first(app: FastAPI, hot: list[BaseRoute]) -> None:
    """Let routing try the ``hot`` routes (the prediction routes) before all the others.

    Starlette tries the routes in order until one matches: a prediction request used to be
    matched against the docs, index and health routes first (about 5 µs, measured with
    bench/inprocess.py). No other route shares a path with the prediction routes, so the
    route chosen for every request is the same (tests/api/test_routing.py).
    """
    moved = {id(route) for route in hot}
    app.router.routes[:] = [*hot, *(r for r in app.router.routes if id(r) not in moved)]


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the FastAPI application for ``settings`` (and an already resolved ``database``)."""
    settings = settings or get_settings()
    owns_database = database is None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = database or resolve_database(settings)
        app.state.database = db
        pool: AsyncConnectionPool[Any] = pool_check.open_pool(
            db.app_conninfo,
            min_size=settings.db.pool_min_size,
            max_size=settings.db.pool_max_size,
            timeout=settings.db.pool_timeout_s,
            kwargs={
                "connect_timeout": settings.db.connect_timeout_s,
                # None: never prepared (PgBouncer in transaction mode, before 1.21).
                **({} if settings.db.prepared_statements else {"prepare_threshold": None}),
            },
            # A pooled connection is checked before it is lent (db.pool.CheckedPool): after a
            # database restart the dead ones are dropped, at once, instead of failing the first
            # requests (a 503 each). The check looks at the socket first: no round trip for a
            # quiet, idle connection.
            # Reconnection backs off exponentially (1 s, 2 s, 4 s...): after a long outage the
            # pool would wait minutes before trying again. Giving up quickly lets the next
            # request start a new attempt at once, so service resumes within about a second.
            reconnect_timeout=settings.db.pool_timeout_s,
            name="attrition-api",
        )
        await pool.open(wait=False)
        runtime = ModelRuntime()
        audit_key = secrets.audit_key(settings)
        app.state.audit_key = audit_key
        app.state.pool = pool
        app.state.runtime = runtime
        writer = GroupCommitWriter(pool) if settings.db.group_commit else None
        if writer is not None:
            await writer.start()
        app.state.service = PredictionService(
            pool,
            runtime,
            audit_key=audit_key,
            observer=app.state.metrics.observe_predictions,
            writer=writer,
        )
        app.state.authenticator = Authenticator(
            pool,
            settings.secret_key.get_secret_value(),
            rate_per_minute=settings.api.rate_limit_per_minute,
            failures_per_minute=settings.api.auth_failures_per_minute,
            predictions_per_minute=settings.api.predictions_per_minute,
            predictions_per_day=settings.api.predictions_per_day,
        )
        # Failed web sign-ins per address: the same kind of limiter as the API's failed
        # authentications, shared by the workers (security/limits.py; api/web/session.py).
        app.state.sign_in_limit = bucket("connexions", settings.api.sign_in_failures_per_minute)
        app.state.rejections = RejectionRecorder(
            pool,
            per_address_per_minute=settings.api.rejections_recorded_per_minute,
            total_per_minute=settings.api.rejections_recorded_per_minute_total,
            max_errors=settings.api.max_errors_listed,
            metrics=app.state.metrics,
        )
        try:
            async with pool.connection(timeout=10.0) as conn:
                await runtime.refresh(conn, force=True)
        except Exception as exc:
            log.error("premier chargement du modèle en échec : %s", type(exc).__name__)
            runtime.reason = "base de données injoignable au démarrage"
        follower = asyncio.create_task(_follow_model(app, runtime.check_interval_s))
        tasks = [follower]
        if settings.db.seal_interval_s > 0:
            tasks.append(
                asyncio.create_task(
                    _seal_audit(
                        app,
                        audit_key,
                        settings.db.seal_interval_s,
                        settings.resolved_checkpoint_dir,
                    )
                )
            )
        # Modules and model loaded at start-up live as long as the process: moved out of the
        # collector's sight, a full collection no longer walks them (it paused a worker for
        # a tenth of a second or more every few batch requests; see bench/).
        gc.freeze()
        log.info("service prêt : %s, modèle %s", db.description, runtime.version)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if writer is not None:
                await writer.close()
            await pool.close()
            app.state.metrics.tally.flush()  # the last turn's counts, before the process ends
            if owns_database:
                db.stop()

    docs = settings.api.expose_docs
    app = FastAPI(
        title="Futurisys — API d'attrition",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=FastJSONResponse,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
        # FastAPI's own OpenTelemetry hooks: the service exports no traces (no OpenTelemetry
        # SDK is installed, so they never emitted anything), but FastAPI still asked the
        # providers on every request whether they were configured. Off, per its documented
        # setting; the service's own metrics and access log are unchanged (docs/decisions.md).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    if docs:
        _install_docs(app)
    app.state.settings = settings
    app.state.rejections = None
    documented: list[BaseRoute] = []  # the routes in the order the description lists them
    problems.install(app, generate=lambda: _describe(app, documented))
    app.include_router(index.router)
    app.state.guide = index.install_guide(app)
    app.include_router(health.router)
    first = len(app.router.routes)
    app.include_router(predictions.router)
    hot = app.router.routes[first:]
    for router in (employees.router, model.router, keys.router):
        app.include_router(router)
    app.include_router(monitoring_router.router)
    app.include_router(audit_router.router)
    page_layers = web.install(app, settings)  # /app pages, /static files, session cookie
    documented.extend(app.router.routes)
    _try_first(app, hot)
    metrics = Metrics(replica=settings.replica)
    metrics.bind(app.state)
    app.state.metrics = metrics
    # Inside the edge middleware (added after it, so nearer the app): the lane's answers get
    # the same request ids, headers, size limits, metrics and access log as the routes'.
    app.add_middleware(PredictionLane, enabled=settings.api.fast_lane)
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.api.max_body_bytes,
        hsts=settings.is_prod,
        metrics=metrics,
        frame_ancestors=settings.api.frame_ancestors,
        pages=page_layers,
        is_page=web.is_page,
    )
    if settings.api.trusted_proxies:
        # Outermost, so that every layer (limits, logs, audit) sees the client's address:
        # X-Forwarded-For is read only from these peers, from the right, up to the first
        # address that is not a trusted proxy (uvicorn's middleware, which takes CIDRs).
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(
            ProxyHeadersMiddleware,
            trusted_hosts=[p.strip() for p in settings.api.trusted_proxies],
        )
    if settings.api.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "X-Request-ID",
                "Idempotency-Key",
            ],
            allow_credentials=False,
        )
    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from the environment set by `attrition serve`."""
    from attrition.api import protocol, server
    from attrition.logs import configure_logging

    server.follow_supervisor()  # a worker exits with its supervisor (one generation at a time)
    settings = get_settings()
    configure_logging(settings)
    app = create_app(settings)
    protocol.set_observer(app.state.metrics.observe_edge_refusal)
    return app
