"""A real server of the app (`attrition serve`: uvicorn) in a subprocess, on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from attrition.config import PROJECT_ROOT, Settings
from attrition.db.engine import Database


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One uvicorn process; ``stop`` (SIGTERM) or ``kill`` (SIGKILL) it, read its log."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    started_at: float = field(default_factory=time.monotonic)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log_tail()}")

    def signal(self, sig: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait(30)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)


def start_server(
    database: Database,
    settings: Settings,
    port: int | None = None,
    workers: int = 1,
    rate_limit_per_minute: int = 10_000_000,
    env: dict[str, str | None] | None = None,
    wait: bool = True,
) -> Server:
    """Start uvicorn on the app factory with the test database and the test secret.

    ``env`` overrides variables (``None`` removes one); ``wait=False`` returns at once.
    """
    port = port or free_port()
    app_password = settings.db.app_password
    overrides = env or {}
    full = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": database.owner_url.render_as_string(hide_password=False),
        "ATTRITION_SECRET_KEY": settings.secret_key.get_secret_value(),
        "ATTRITION_DB__APP_PASSWORD": app_password.get_secret_value() if app_password else "",
        "ATTRITION_API__RATE_LIMIT_PER_MINUTE": str(rate_limit_per_minute),
        "ATTRITION_API__AUTH_FAILURES_PER_MINUTE": "10000000",
        "ATTRITION_API__PREDICTIONS_PER_MINUTE": "10000000",
        "ATTRITION_API__PREDICTIONS_PER_DAY": "1000000000",
        "ATTRITION_API__REJECTIONS_RECORDED_PER_MINUTE": "1000000",
        "ATTRITION_API__REJECTIONS_RECORDED_PER_MINUTE_TOTAL": "1000000",
        "ATTRITION_LOG_LEVEL": "WARNING",
    }
    full.pop("ATTRITION_EMBEDDED_PGDATA", None)
    for name, value in overrides.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    log = Path(tempfile.mkstemp(prefix="attr-uvicorn-", suffix=".log")[1])
    # `attrition serve`, as in production: it prepares the (already prepared) database, then
    # runs uvicorn on the app factory (one process unless told otherwise).
    command = [
        str(Path(sys.executable).with_name("attrition")), "serve", "--no-train",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=full, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT
        )
    server = Server(process=process, port=port, log=log)
    if wait:
        server.wait_ready()
    return server
