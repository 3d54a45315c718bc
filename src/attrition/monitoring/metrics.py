"""Prometheus metrics of the API, and the access log line of each request.

Each :func:`attrition.api.app.create_app` builds its own :class:`Metrics` with its own
registry (no process-wide global, so several apps can live in one test process). The edge
middleware calls :meth:`Metrics.observe_request` once per request, the prediction service
calls :meth:`Metrics.observe_predictions` with what it recorded; the model version and the
database pool are read at scrape time from the application state.

With several workers, a scrape reaches one of them: on its own, it would report only its
share of the requests. ``attrition serve`` then sets ``PROMETHEUS_MULTIPROC_DIR`` (a fresh
folder) before the workers start, prometheus_client keeps every worker's counters and
histograms in files there, and :meth:`Metrics.render` adds them up (its multiprocess mode).
The model and pool gauges stay those of the worker that answers.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from attrition.logs import ACCESS_LOGGER, access_handler
from attrition.monitoring.tally import Tally

access_log = logging.getLogger(ACCESS_LOGGER)
#: One request's access line: method, route template, status, milliseconds, ids.
ACCESS_LINE = "%s %s %s %.1f ms (requête %s, clé %s)"

#: Latency buckets (seconds): scoring takes milliseconds, a batch of 1 000 a fraction of one.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROBABILITY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Mounted sub-applications have no route template: their prefix stands for it.
MOUNTS = ("/static-docs", "/static")
UNKNOWN_ROUTE = "inconnue"
#: psycopg_pool statistics exported as gauges (``get_stats()`` keys).
POOL_GAUGES = {
    "pool_min": "Connexions minimales du pool.",
    "pool_max": "Connexions maximales du pool.",
    "pool_size": "Connexions ouvertes (libres ou prêtées).",
    "pool_available": "Connexions libres dans le pool.",
    "requests_waiting": "Demandes de connexion en attente.",
}
#: Cumulative psycopg_pool counters (exported as gauges: they restart with the pool).
POOL_TOTALS = {
    "requests_num": "Demandes de connexion depuis l'ouverture du pool.",
    "requests_queued": "Demandes qui ont dû attendre une connexion.",
    "requests_errors": "Demandes de connexion en échec (délai dépassé).",
    "connections_errors": "Échecs d'ouverture de connexion.",
    "connections_lost": "Connexions perdues détectées par le pool.",
}


def route_label(route: str, path: str) -> str:
    """The route template, or the mount prefix, or ``inconnue``: never a raw path."""
    if route != UNKNOWN_ROUTE:
        return route
    for prefix in MOUNTS:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix
    return UNKNOWN_ROUTE


class _StateCollector(Collector):
    """Model in use and database pool usage, read from the app state at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        state = self.metrics.state
        runtime = getattr(state, "runtime", None)
        model = getattr(runtime, "current", None)
        ready = GaugeMetricFamily(
            "attrition_model_ready", "1 si un modèle est chargé et prêt à prédire, sinon 0."
        )
        ready.add_metric([], 1.0 if runtime is not None and runtime.ready else 0.0)
        yield ready
        info = GaugeMetricFamily(
            "attrition_model_info",
            "Version du modèle en service (valeur 1) et son seuil de décision.",
            labels=["version", "algorithm", "threshold"],
        )
        if model is not None:
            info.add_metric([model.version, model.algorithm, f"{model.threshold:.6g}"], 1.0)
        yield info
        pool = getattr(state, "pool", None)
        stats: dict[str, int] = pool.get_stats() if pool is not None else {}
        for key, doc in {**POOL_GAUGES, **POOL_TOTALS}.items():
            gauge = GaugeMetricFamily(f"attrition_db_{key}", doc)
            gauge.add_metric([], float(stats.get(key, 0)))
            yield gauge
        yield from self._realized()

    def _realized(self) -> Iterator[Metric]:
        """The last realized-performance report (refreshed at most once a minute)."""
        report = self.metrics.performance
        gauges = {
            "precision": "Précision réalisée des signalements (prédictions résolues).",
            "recall": "Rappel réalisé : part des départs constatés qui avaient été signalés.",
            "calibration_gap": "Taux de départ observé moins probabilité moyenne prédite.",
            "resolved": "Prédictions dont l'issue est connue à l'horizon.",
            "retrain": "1 si les seuils de la fiche du modèle demandent un réentraînement.",
        }
        families = {
            key: GaugeMetricFamily(f"attrition_realized_{key}", doc, labels=["version"])
            for key, doc in gauges.items()
        }
        for version in getattr(report, "versions", []):
            values = {
                "precision": version.precision,
                "recall": version.rappel,
                "calibration_gap": version.ecart_calibration,
                "resolved": version.resolues,
                "retrain": 1.0 if version.statut == "reentrainer" else 0.0,
            }
            for key, value in values.items():
                if value is not None:
                    families[key].add_metric([version.model_version], float(value))
        yield from families.values()


class Metrics:
    """The metrics of one application; see docs/monitoring.md for the list.

    ``replica`` (``ATTRITION_REPLICA``) becomes the first label of every sample at scrape
    time, so that the replicas behind one load balancer stay apart once collected.
    """

    def __init__(self, replica: str | None = None) -> None:
        self.replica = replica
        self.registry = CollectorRegistry()
        self.state: Any = None
        self.requests = Counter(
            "attrition_http_requests",
            "Requêtes HTTP traitées, par méthode, modèle de route et statut.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "attrition_http_request_duration_seconds",
            "Durée de traitement des requêtes HTTP (secondes).",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # The two children of each (method, route, status), looked up once: ``labels()``
        # validates and locks on every call. Route templates and statuses are few.
        self._request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._prediction_children: dict[tuple[str, str, str], Any] = {}
        #: What this loop turn's requests added, written once at its end (monitoring.tally).
        self.tally = Tally()
        self.predictions = Counter(
            "attrition_predictions",
            "Prédictions enregistrées, par décision, niveau de risque et canal.",
            ["label", "risk_level", "source"],
            registry=self.registry,
        )
        self.probability = Histogram(
            "attrition_prediction_probability",
            "Probabilités de départ prédites (distribution).",
            buckets=PROBABILITY_BUCKETS,
            registry=self.registry,
        )
        self.unrecorded = Counter(
            "attrition_rejections_unrecorded",
            "Refus de clients sans clé valide non écrits dans rejected_requests (budget "
            "d'écriture épuisé), par statut.",
            ["status"],
            registry=self.registry,
        )
        self.edge_refusals = Counter(
            "attrition_edge_refusals",
            "Requêtes refusées par le serveur HTTP avant l'application (431 : en-têtes trop "
            "volumineux), par motif.",
            ["reason"],
            registry=self.registry,
        )
        self.performance: Any = None
        self.performance_at = 0.0
        self.registry.register(_StateCollector(self))

    def observe_performance(self, report: Any) -> None:
        """Keep the last realized-performance report for the ``attrition_realized_*`` gauges."""
        self.performance = report
        self.performance_at = time.monotonic()

    def performance_stale(self, max_age_s: float = 60.0) -> bool:
        return self.performance is None or time.monotonic() - self.performance_at > max_age_s

    def bind(self, state: Any) -> None:
        """Read the model runtime and the pool from ``state`` (``app.state``) at scrape time."""
        self.state = state

    def observe_request(
        self, method: str, route: str, status: int, seconds: float, scope: Any = None
    ) -> None:
        """Count and time one request, and write its access log line."""
        scope = scope or {}
        route = route_label(route, str(scope.get("path", "")))
        labels = (method, route, str(status))
        children = self._request_children.get(labels)
        if children is None:
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._request_children[labels] = children
        self.tally.inc(children[0])
        self.tally.observe(children[1], seconds)
        state = scope.get("state") or {}
        client = state.get("client")
        # Route template only (no path parameters, no query string), key id only (no secret).
        args = (
            method,
            route,
            status,
            seconds * 1000,
            state.get("request_id", "-"),
            getattr(client, "key_id", "-"),
        )
        extra = {
            "request_id": state.get("request_id"),
            "client_request_id": state.get("client_request_id"),
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": getattr(client, "key_id", None),
        }
        handler = access_handler(access_log)
        if handler is not None:  # formatted with the others when written (ADR 32)
            handler.defer(ACCESS_LINE, args, extra)
        else:
            access_log.info(ACCESS_LINE, *args, extra=extra)

    def observe_unrecorded_rejection(self, status: int) -> None:
        self.unrecorded.labels(str(status)).inc()

    def observe_edge_refusal(self, reason: str) -> None:
        self.edge_refusals.labels(reason).inc()

    def observe_predictions(self, outcomes: Sequence[Any], source: str) -> None:
        """Count recorded predictions (the prediction service's observer).

        A batch's outcomes are counted per (decision, level): one labelled child looked up
        and incremented per kind instead of per prediction.
        """
        tally, probability = self.tally, self.probability
        if len(outcomes) == 1:
            outcome = outcomes[0]
            tally.inc(self._prediction_child(outcome.label, outcome.risk_level, source))
            tally.observe(probability, outcome.probability)
            return
        kinds = collections.Counter((o.label, o.risk_level) for o in outcomes)
        for (label, level), count in kinds.items():
            tally.inc(self._prediction_child(label, level, source), count)
        for outcome in outcomes:
            tally.observe(probability, outcome.probability)

    def _prediction_child(self, label: str, level: str, source: str) -> Any:
        key = (label, level, source)
        child = self._prediction_children.get(key)
        if child is None:
            child = self._prediction_children[key] = self.predictions.labels(*key)
        return child

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type (every worker's counts when several)."""
        self.tally.flush()  # this turn's requests too
        directory = multiprocess_dir()
        if directory is None:
            text = generate_latest(self.registry)
        else:
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=directory)
            registry.register(_StateCollector(self))
            text = generate_latest(registry)
        if self.replica is not None:
            text = with_label(text, "replica", self.replica)
        return text, CONTENT_TYPE_LATEST


def with_label(text: bytes, name: str, value: str) -> bytes:
    """The exposition ``text`` with ``name="value"`` as the first label of every sample."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    label = f'{name}="{escaped}"'.encode()
    lines = []
    for line in text.split(b"\n"):
        if line and not line.startswith(b"#"):
            # A metric name never holds "{" or " ": the first of them ends it.
            cut = min(i for i in (line.find(b"{"), line.find(b" ")) if i >= 0)
            if line[cut : cut + 1] == b"{":
                closing = b"," if line[cut + 1 : cut + 2] != b"}" else b""
                line = line[: cut + 1] + label + closing + line[cut + 1 :]
            else:
                line = line[:cut] + b"{" + label + b"}" + line[cut:]
        lines.append(line)
    return b"\n".join(lines)


def multiprocess_dir() -> str | None:
    """The folder shared by the workers' metrics, if prometheus_client's multiprocess mode is on.

    prometheus_client reads the variable when it is first imported: ``attrition serve`` sets
    it before it spawns the workers, never in a running process.
    """
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
