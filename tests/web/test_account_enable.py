"""Re-enabling a disabled account (issue #18): CLI and admin page, checked on the rows."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from attrition.cli import app
from attrition.db.engine import Database
from attrition.services.accounts import AccountService, connect_to
from tests.helpers import People, create_person
from tests.web.test_pages import csrf, sign_in


def account_row(database: Database, login: str) -> dict[str, Any]:
    """The account, its current audit identity, and every identity it has had."""
    with database.owner_engine().connect() as c:
        row = c.execute(
            text(
                "SELECT u.disabled_at, u.api_key_id, u.failed_attempts, u.locked_until, "
                "k.revoked_at AS key_revoked, k.role::text AS key_role, k.name AS key_name "
                "FROM users u JOIN api_keys k ON k.id = u.api_key_id WHERE u.login = :l"
            ),
            {"l": login},
        ).one()
        identities = c.execute(
            text("SELECT id, revoked_at IS NOT NULL FROM api_keys WHERE name = :n ORDER BY id"),
            {"n": f"compte:{login}"},
        ).all()
    return {**row._asdict(), "identities": [tuple(i) for i in identities]}


def test_cli_enable_reactivates_with_a_new_audit_identity(
    cli_env: CliRunner, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    person = create_person(database, f"cli-{uuid.uuid4().hex[:8]}", "predicteur")
    service = AccountService(connect_to(database.owner_conninfo))
    assert cli_env.invoke(app, ["users", "disable", person.login]).exit_code == 0
    disabled = account_row(database, person.login)
    assert disabled["disabled_at"] is not None and disabled["key_revoked"] is not None

    enabled = cli_env.invoke(app, ["users", "enable", person.login])
    assert enabled.exit_code == 0, enabled.output
    assert f"Compte {person.login} réactivé" in enabled.output
    row = account_row(database, person.login)
    assert row["disabled_at"] is None and row["key_revoked"] is None
    assert (row["failed_attempts"], row["locked_until"]) == (0, None)
    assert (row["key_role"], row["key_name"]) == ("predicteur", f"compte:{person.login}")
    # The disabling stays on record: the old identity keeps its revocation, a new one serves.
    assert row["identities"] == [(disabled["api_key_id"], True), (row["api_key_id"], False)]
    signed = asyncio.run(service.sign_in(person.login, person.password))
    assert signed.account.login == person.login
    assert "actif" in cli_env.invoke(app, ["users", "list"]).output

    again = cli_env.invoke(app, ["users", "enable", person.login])
    assert again.exit_code == 0 and "déjà actif" in again.output
    assert account_row(database, person.login)["identities"] == row["identities"]
    unknown = cli_env.invoke(app, ["users", "enable", "personne-inconnue"])
    assert unknown.exit_code == 1 and "Compte « personne-inconnue » inconnu." in unknown.output


def test_admin_page_reenables_a_disabled_account(
    web: TestClient, people: People, database: Database
) -> None:
    person = create_person(database, f"web-{uuid.uuid4().hex[:8]}", "auditeur")
    sign_in(web, people.admin)
    token = csrf(web, "/app/comptes")
    path = f"/app/comptes/{person.login}"
    assert "réactiver" not in web.get("/app/comptes").text.lower().split(person.login)[1][:600]
    r = web.post(f"{path}/desactivation", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    page = web.get("/app/comptes").text
    assert f'action="{path}/reactivation"' in page
    assert web.post(f"{path}/reactivation", data={"csrf": "x"}).status_code == 403
    assert account_row(database, person.login)["disabled_at"] is not None

    r = web.post(f"{path}/reactivation", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/comptes"
    assert f"Compte « {person.login} » réactivé" in web.get("/app/comptes").text
    row = account_row(database, person.login)
    assert row["disabled_at"] is None and row["key_revoked"] is None
    assert [revoked for _, revoked in row["identities"]] == [True, False]
    unknown = web.post("/app/comptes/personne-inconnue/reactivation", data={"csrf": token})
    assert unknown.status_code == 404 and "inconnu" in unknown.text

    web.cookies.clear()
    assert sign_in(web, person).status_code == 303
