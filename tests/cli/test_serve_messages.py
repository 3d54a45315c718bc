"""`attrition serve` speaks French when it cannot start, and exits non-zero."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from attrition.cli import app

runner = CliRunner()


def test_busy_port_is_a_french_error_with_a_non_zero_exit() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["serve", "--host", "127.0.0.1", "--port", str(port)])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port} est déjà utilisée" in result.output
    assert "Errno" not in result.output and "arrêté proprement" not in result.output
    assert "--port" in result.output
