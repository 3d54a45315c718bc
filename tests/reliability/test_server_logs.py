"""The server's own lines (uvicorn's start and stop) read as the app's: French, same format."""

from __future__ import annotations

import json
import signal

import pytest

from attrition.config import Settings
from attrition.db.engine import Database
from tests.reliability.server import start_server

UVICORN_ENGLISH = (
    "Started server process",
    "Waiting for application startup",
    "Application startup complete",
    "Uvicorn running on",
    "Shutting down",
    "Waiting for application shutdown",
    "Application shutdown complete",
    "Finished server process",
    "Started parent process",
    "Stopping parent process",
)


def _served_log(database: Database, settings: Settings, workers: int, json_logs: bool) -> str:
    env = {"ATTRITION_LOG_LEVEL": "INFO", "ATTRITION_LOG_JSON": "true" if json_logs else "false"}
    server = start_server(database, settings, workers=workers, env=env)
    server.signal(signal.SIGTERM)
    assert server.wait(60) == 0
    return server.log.read_text(errors="replace")


@pytest.mark.parametrize("workers", [1, 2])
def test_start_and_stop_lines_are_french_in_the_app_format(
    database: Database, settings: Settings, model_version: str, workers: int
) -> None:
    log = _served_log(database, settings, workers, json_logs=False)
    for english in UVICORN_ENGLISH:
        assert english not in log, f"{english!r} in:\n{log}"
    lines = [line for line in log.splitlines() if " uvicorn.error: " in line]
    messages = [line.split(" uvicorn.error: ", 1)[1] for line in lines]
    assert any(m.startswith("Processus serveur démarré") for m in messages), log
    assert any(m.startswith("Application prête") for m in messages), log
    assert any(m.startswith("Serveur à l'écoute sur http://127.0.0.1:") for m in messages), log
    assert any(m.startswith("Application arrêtée") for m in messages), log


def test_start_and_stop_lines_are_json_when_the_logs_are(
    database: Database, settings: Settings, model_version: str
) -> None:
    log = _served_log(database, settings, 2, json_logs=True)
    records = []
    for line in log.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    server_lines = [r for r in records if r["logger"].startswith("uvicorn")]
    messages = [r["message"] for r in server_lines]
    assert any(m.startswith("Processus serveur démarré") for m in messages), log
    assert any(m.startswith("Serveur à l'écoute sur") for m in messages), log
    # Nothing of uvicorn's is printed outside the JSON lines.
    for line in log.splitlines():
        if not line.startswith("{"):
            assert not any(e in line for e in UVICORN_ENGLISH), line
            assert "uvicorn" not in line, line
