"""Start-up refusals that must be French messages, never tracebacks (issue 19, 1, 3, 8)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import SecretStr

from attrition.bootstrap import prepare_database
from attrition.config import Settings
from attrition.db.embedded import ensure_writable_dir
from attrition.db.engine import Database
from attrition.errors import ConfigurationError

# A server that does not exist: every check below must refuse before connecting.
NOWHERE = "postgresql+psycopg://attrition_owner@/attrition?host=/nonexistent-socket-dir"


def prod(**overrides: object) -> Settings:
    return Settings(
        app_env="prod",
        pgdata=Path("/data/pgdata"),
        secret_key=SecretStr(secrets.token_urlsafe(48)),
        audit_key=SecretStr(secrets.token_urlsafe(48)),
        **overrides,  # type: ignore[arg-type]
    )


def test_unwritable_pgdata_gives_a_french_message(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        ensure_writable_dir(blocker / "pgdata")
    message = caught.value.message
    assert "inutilisable" in message and str(blocker / "pgdata") in message
    assert "chown -R 1000:1000" in message


def test_writable_pgdata_is_created(tmp_path: Path) -> None:
    ensure_writable_dir(tmp_path / "a" / "pgdata")
    assert (tmp_path / "a" / "pgdata").is_dir()


def test_prod_refuses_an_ephemeral_database_without_the_flag() -> None:
    db = Database(owner_url=NOWHERE, app_url=NOWHERE, persistent=False)
    said: list[str] = []
    with pytest.raises(ConfigurationError) as caught:
        prepare_database(prod(), said.append, db)
    assert "ATTRITION_ALLOW_EPHEMERAL_DB=1" in caught.value.message


def test_prod_accepts_an_ephemeral_database_with_the_flag_and_says_so() -> None:
    db = Database(owner_url=NOWHERE, app_url=NOWHERE, persistent=False, embedded_dir="/data/pg")
    said: list[str] = []
    with pytest.raises(Exception) as caught:  # it goes on, to the (absent) server
        prepare_database(prod(allow_ephemeral_db=True), said.append, db)
    assert not isinstance(caught.value, ConfigurationError)
    assert any("NON persistante acceptée" in line for line in said)


def test_prod_external_database_needs_the_app_password() -> None:
    db = Database(owner_url=NOWHERE, app_url=NOWHERE, persistent=True)
    with pytest.raises(ConfigurationError) as caught:
        prepare_database(prod(database_url=NOWHERE), lambda _m: None, db)
    assert "ATTRITION_DB__APP_PASSWORD requis" in caught.value.message
    with_password = prod(database_url=NOWHERE, db={"app_password": SecretStr("p" * 24)})
    with pytest.raises(Exception) as other:  # past the check, to the (absent) server
        prepare_database(with_password, lambda _m: None, db)
    assert not isinstance(other.value, ConfigurationError)


def test_claiming_an_unusable_data_folder_gives_a_french_message(tmp_path: Path) -> None:
    """`attrition serve` takes its lock beside the data folder first: same French refusal."""
    from attrition.api.server import claim_data_folder

    blocker = tmp_path / "data"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        claim_data_folder(blocker / "pgdata")
    assert "chown -R 1000:1000" in caught.value.message
    handle = claim_data_folder(tmp_path / "ok" / "pgdata")
    try:
        assert (tmp_path / "ok" / ".pgdata.serve.lock").is_file()
    finally:
        handle.close()
