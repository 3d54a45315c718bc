"""Logging set-up: readable lines in dev, one JSON object per line in prod (no personal data)."""

from __future__ import annotations

import collections
import logging
import re
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

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


#: The logger of the access log: one line per request (monitoring.metrics).
ACCESS_LOGGER = "attrition.access"


#: Deferred lines formatted by the background thread between two pauses, in which it lets
#: the thread of the requests take the interpreter back (``time.sleep(0)``): a batch of a
#: few hundred lines formatted at once held a request arriving meanwhile for a millisecond.
PAUSE_EVERY = 32


class AccessBatchingHandler(logging.StreamHandler):
    """A ``StreamHandler`` that writes the access log's lines in batches, ``delay_s`` late at
    most; every other line at once, after the lines it holds (the order is kept).

    One write per line is one system call per request on the request path: about a tenth of
    a process's CPU per prediction under load (bench/, docs/performance.md). The lines are
    gathered and written together by a background thread, as nginx's ``access_log ...
    buffer= flush=``. ``close`` (``logging.shutdown`` at exit) writes what is left; a process
    killed outright loses at most ``delay_s`` of access lines, never an audit record (those
    are in PostgreSQL before the response).

    A request's line may also be handed over unformatted (:meth:`defer`, when
    :func:`access_handler` says this handler is the only one it would reach): its record is
    made and formatted when the batch is written. Made one by one among each request's other
    work, the records and their formatting cost about 5 % of a worker's throughput, at
    concurrency 1 as at 32, against a few microseconds in a loop (ADR 32).
    """

    def __init__(self, stream: Any = None, *, delay_s: float = 0.2) -> None:
        super().__init__(stream)
        self.delay_s = delay_s
        #: Held lines, in order: formatted text, or the parts of a deferred line. A deque:
        #: ``defer`` appends without the handler's lock, while a batch is being written.
        self._held: collections.deque[str | _Deferred] = collections.deque()
        self._waiting = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def emit(self, record: logging.LogRecord) -> None:  # called under self.lock
        if record.name != ACCESS_LOGGER:
            self._write_held()
            super().emit(record)
            return
        try:
            self._held.append(self.format(record) + self.terminator)
        except Exception:  # as StreamHandler.emit: a bad record never breaks a request
            self.handleError(record)
            return
        self._wake()

    def defer(self, msg: str, args: tuple[Any, ...], extra: dict[str, Any]) -> None:
        """Hold an access line as ``logger.info(msg, *args, extra=extra)`` would log it now."""
        self._held.append(_Deferred(time.time_ns(), msg, args, extra))
        self._wake()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_held()
            super().flush()

    def close(self) -> None:
        self._closed = True
        self.flush()
        self._waiting.set()  # the thread ends
        super().close()

    def _wake(self) -> None:
        if not self._waiting.is_set():
            self._waiting.set()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="attrition-access-log", daemon=True
                )
                self._thread.start()

    def _write_held(self, *, pausing: bool = False) -> None:  # called under self.lock
        held, parts = self._held, []
        self._waiting.clear()  # a line held from now on wakes the thread again
        for n in range(len(held)):  # what is there now; later lines wait for the next batch
            if pausing and n and n % PAUSE_EVERY == 0:
                time.sleep(0)  # the requests' thread may run: it waits for no lock here
            line = held.popleft()
            parts.append(line if isinstance(line, str) else self._format_deferred(line))
        if parts:
            self.stream.write("".join(parts))

    def _format_deferred(self, line: _Deferred) -> str:
        # Through the record factory, as Logger.makeRecord: one the operator set applies too.
        factory = logging.getLogRecordFactory()
        record = factory(ACCESS_LOGGER, logging.INFO, "", 0, line.msg, line.args, None)
        # The time of the request, not of the batch: as LogRecord sets it, from that moment.
        created = line.ns / 1e9
        record.relativeCreated -= (record.created - created) * 1000
        record.created, record.msecs = created, line.ns % 1_000_000_000 // 1_000_000 + 0.0
        record.__dict__.update(line.extra)
        try:
            return self.format(record) + self.terminator
        except Exception:  # as emit: a line that cannot be formatted is reported, not written
            self.handleError(record)
            return ""

    def _run(self) -> None:
        while not self._closed:
            self._waiting.wait()
            if self._closed:
                return
            time.sleep(self.delay_s)  # the lines of this moment gather
            try:
                with self.lock:  # type: ignore[union-attr]
                    self._write_held(pausing=True)
                    super().flush()
            except Exception:  # pragma: no cover - a stream closed under us at exit
                return


class _Deferred(NamedTuple):
    """An access line's parts, held by :meth:`AccessBatchingHandler.defer`."""

    ns: int
    msg: str
    args: tuple[Any, ...]
    extra: dict[str, Any]


def access_handler(logger: logging.Logger) -> AccessBatchingHandler | None:
    """The handler that may hold ``logger``'s INFO lines unformatted, else None.

    It must be the one handler the line would reach, with nothing on the way that could
    drop or change it (a filter, a level): then what it writes is what ``logging`` would
    have. Anything else (pytest's ``caplog``, a second handler, a filter) and the caller
    logs as usual.
    """
    if logger.filters or not logger.isEnabledFor(logging.INFO):
        return None
    found: AccessBatchingHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if (
                found is not None
                or type(handler) is not AccessBatchingHandler
                or handler.filters
                or handler.level > logging.INFO
            ):
                return None
            found = handler
        current = current.parent if current.propagate else None
    return found


def configure_logging(settings: Settings) -> None:
    lighten_records()
    handler = AccessBatchingHandler(sys.stderr)
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
