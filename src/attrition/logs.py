"""Logging set-up: readable lines in dev, one JSON object per line in prod (no personal data)."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from attrition.config import Settings

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()


def lighten_records() -> None:
    """Stop collecting, for every log record, what no format here shows.

    The logging HOWTO's "Optimization" settings: no lookup of the caller's frame (file,
    function, line), no thread, process or multiprocessing names. Neither format (plain or
    JSON) shows them, and each cost every line of the access log, one per request (a frame
    walk, a ``getpid`` system call, two lookups).
    """
    logging._srcfile = None  # the switch the HOWTO documents
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure_logging(settings: Settings) -> None:
    lighten_records()
    handler = logging.StreamHandler(sys.stderr)
    if settings.json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    quiet_embedded_server(settings.log_level)


def quiet_embedded_server(level: str) -> None:
    """The embedded PostgreSQL logs each pg_ctl call at INFO: shown only with LOG_LEVEL=DEBUG."""
    debug = logging.getLevelName(level.upper()) == logging.DEBUG
    logging.getLogger("pgserver").setLevel(logging.DEBUG if debug else logging.WARNING)


#: uvicorn's own lines (start, stop, signals, workers), in French: (pattern, French template).
#: A line not listed keeps uvicorn's wording.
SERVER_LINES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), french)
    for pattern, french in (
        (r"Started server process \[(\d+)\]", "Processus serveur démarré [{0}]"),
        (r"Finished server process \[(\d+)\]", "Processus serveur terminé [{0}]"),
        (r"Started parent process \[(\d+)\]", "Processus parent démarré [{0}]"),
        (r"Stopping parent process \[(\d+)\]", "Arrêt du processus parent [{0}]"),
        (r"Waiting for application startup\.", "Démarrage de l'application…"),
        (r"Application startup complete\.", "Application prête."),
        (r"Application startup failed\. Exiting\.", "Échec du démarrage de l'application : arrêt."),
        (r"Waiting for application shutdown\.", "Arrêt de l'application…"),
        (r"Application shutdown complete\.", "Application arrêtée."),
        (r"Application shutdown failed\. Exiting\.", "Échec de l'arrêt de l'application."),
        (r"Shutting down", "Arrêt en cours"),
        (r"Received (SIG[A-Z]+), exiting\.", "Signal {0} reçu : arrêt."),
        (r"Terminated child process \[(\d+)\]", "Processus enfant [{0}] arrêté"),
        (r"Waiting for child process \[(\d+)\]", "Attente de la fin du processus enfant [{0}]"),
        (r"Child process \[(\d+)\] died", "Le processus enfant [{0}] s'est arrêté seul"),
        (
            r"Uvicorn running on (.+) \(Press CTRL\+C to quit\)",
            "Serveur à l'écoute sur {0} (Ctrl+C pour arrêter)",
        ),
        (
            r"Cancel (\d+) running task\(s\), timeout graceful shutdown exceeded",
            "Délai d'arrêt dépassé : {0} tâche(s) en cours annulée(s)",
        ),
    )
)


class FrenchServerLines(logging.Filter):
    """Rewrites uvicorn's start and stop lines in French (:data:`SERVER_LINES`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for pattern, french in SERVER_LINES:
            match = pattern.fullmatch(message)
            if match:
                record.msg, record.args = french.format(*match.groups()), ()
                break
        record.__dict__.pop("color_message", None)
        return True


def server_log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's ``log_config``: its lines in French, in the app's format (JSON in prod).

    Given to uvicorn (``attrition serve``), which applies it in the supervisor and in each
    worker, before the application configures the root logger the same way.
    """
    formatter: dict[str, Any] = (
        {"()": "attrition.logs.JsonFormatter"} if settings.json_logs else {"format": PLAIN_FORMAT}
    )
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"french": {"()": "attrition.logs.FrenchServerLines"}},
        "formatters": {"app": formatter},
        "handlers": {
            "server": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "app",
                "filters": ["french"],
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["server"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["server"], "level": level, "propagate": False},
        },
    }
