"""Logging set-up: readable lines in dev, one JSON object per line in prod (no personal data)."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

from attrition.config import Settings

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


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


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.json_logs:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    quiet_embedded_server(settings.log_level)


def quiet_embedded_server(level: str) -> None:
    """The embedded PostgreSQL logs each pg_ctl call at INFO: shown only with LOG_LEVEL=DEBUG."""
    debug = logging.getLevelName(level.upper()) == logging.DEBUG
    logging.getLogger("pgserver").setLevel(logging.DEBUG if debug else logging.WARNING)
