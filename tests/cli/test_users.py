"""``attrition users`` against the real database: accounts and sessions from the terminal."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from typer.testing import CliRunner

from attrition.cli import app
from attrition.db.engine import Database
from attrition.services.accounts import AccountService, connect_to

PASSWORD = re.compile(r"^([A-Za-z0-9]{5}(?:-[A-Za-z0-9]{5}){3})$", re.MULTILINE)


def test_create_list_reset_sessions_and_disable(
    cli_env: CliRunner, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = cli_env
    monkeypatch.setenv("COLUMNS", "200")
    login = f"cli-{uuid.uuid4().hex[:8]}"
    created = cli.invoke(app, ["users", "create", "--login", login, "--role", "auditeur"])
    assert created.exit_code == 0, created.output
    assert "mot de passe à usage unique" in created.output
    first = PASSWORD.search(created.output)
    assert first
    listed = cli.invoke(app, ["users", "list"])
    assert listed.exit_code == 0 and login in listed.output
    assert "mot de passe à choisir" in listed.output

    reset = cli.invoke(app, ["users", "reset", login])
    second = PASSWORD.search(reset.output)
    assert reset.exit_code == 0 and second and second.group(1) != first.group(1)
    service = AccountService(connect_to(database.owner_conninfo))
    signed = asyncio.run(service.sign_in(login, second.group(1)))

    sessions = cli.invoke(app, ["users", "sessions"])
    assert sessions.exit_code == 0 and login in sessions.output
    ended = cli.invoke(app, ["users", "end-session", str(signed.account.session_id)])
    assert ended.exit_code == 0 and f"Session {signed.account.session_id} fermée." in ended.output
    assert asyncio.run(service.session(signed.token)) is None
    again = cli.invoke(app, ["users", "end-session", str(signed.account.session_id)])
    assert again.exit_code == 1 and "inconnue ou déjà terminée" in again.output

    disabled = cli.invoke(app, ["users", "disable", login])
    assert disabled.exit_code == 0 and "désactivé" in disabled.output
    assert "désactivé" in cli.invoke(app, ["users", "list"]).output


def test_errors_are_one_french_line(cli_env: CliRunner) -> None:
    cli = cli_env
    bad = cli.invoke(app, ["users", "create", "--login", "x y", "--role", "auditeur"])
    assert bad.exit_code == 1 and "Erreur : Identifiant refusé" in bad.output
    role = cli.invoke(app, ["users", "create", "--login", "cli-role", "--role", "root"])
    assert role.exit_code == 1 and "rôle inconnu « root »" in role.output
    unknown = cli.invoke(app, ["users", "reset", "personne-inconnue"])
    assert unknown.exit_code == 1 and "Compte « personne-inconnue » inconnu." in unknown.output
    assert "Traceback" not in unknown.output
