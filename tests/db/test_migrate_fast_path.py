"""The start-up checks over plain psycopg: skip what is done, still do what is missing.

A scratch database on the test server, migrated by Alembic to one revision behind head, goes
through the same sequence as `attrition serve`: it must be migrated, granted, loaded and given
an admin key; on the second pass at head, Alembic must not even be called.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from pydantic import SecretStr

from attrition import bootstrap
from attrition.config import AppEnv, Settings
from attrition.db import loading, migrate
from attrition.db.engine import Database
from attrition.errors import ValidationError
from attrition.security.keys import generate_key


def test_head_constant_is_alembic_head() -> None:
    """HEAD_REVISION must follow the migrations, or the fast path would skip a new one."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_heads() == [migrate.HEAD_REVISION]


def test_dataset_tables_are_the_loaded_tables() -> None:
    assert tuple(loading.TABLE_COLUMNS) == bootstrap.DATASET_TABLES


def test_session_database_is_at_head(database: Database) -> None:
    with database.connect(admin=True, autocommit=True) as conn:
        assert migrate.recorded_revisions(conn) == [migrate.HEAD_REVISION]
        assert migrate.schema_at_head(conn)


def _migrate_to(db: Database, revision: str) -> None:
    cfg = migrate.alembic_config()
    with db.owner_engine().begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _privileges(db: Database, role: str) -> dict[str, bool]:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT has_table_privilege(%(r)s, 'employees', 'SELECT'),"
            " has_table_privilege(%(r)s, 'employees', 'UPDATE'),"
            " has_table_privilege(%(r)s, 'predictions', 'INSERT'),"
            " has_table_privilege(%(r)s, 'predictions', 'DELETE'),"
            " has_column_privilege(%(r)s, 'model_versions', 'serving_state', 'SELECT')",
            {"r": role},
        ).fetchone()
    assert row is not None
    keys = ("employees_select", "employees_update", "predictions_insert", "predictions_delete")
    return dict(zip((*keys, "serving_state_select"), row, strict=True))


def test_behind_head_is_migrated_then_skipped(
    scratch: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _migrate_to(scratch, "0003")  # 0004 adds model_versions.serving_state
    with scratch.connect(admin=True, autocommit=True) as conn:
        assert migrate.recorded_revisions(conn) == ["0003"]
        assert not migrate.schema_at_head(conn)

    said: list[str] = []
    calls: list[Any] = []
    real_upgrade = migrate.upgrade

    def counting_upgrade(engine: Any) -> None:
        calls.append(engine)
        real_upgrade(engine)

    monkeypatch.setattr(migrate, "upgrade", counting_upgrade)
    bootstrap.prepare_database(settings, said.append, scratch)
    assert len(calls) == 1
    assert "Schéma à jour (migrations Alembic appliquées)." in said
    with scratch.connect(admin=True, autocommit=True) as conn:
        assert migrate.recorded_revisions(conn) == [migrate.HEAD_REVISION]
    assert _privileges(scratch, settings.db.app_role) == {
        "employees_select": True,
        "employees_update": False,
        "predictions_insert": True,
        "predictions_delete": False,
        "serving_state_select": True,
    }

    # Second start: at head, Alembic is not called, the grants are still (re)applied.
    with scratch.connect(admin=True) as conn:
        conn.execute(f'REVOKE SELECT ON employees FROM "{settings.db.app_role}"')
    said.clear()
    bootstrap.prepare_database(settings, said.append, scratch)
    assert len(calls) == 1
    assert (
        f"Schéma à jour (révision {migrate.HEAD_REVISION}, aucune migration à appliquer)." in said
    )
    assert _privileges(scratch, settings.db.app_role)["employees_select"] is True


def test_fresh_database_is_migrated_from_nothing(scratch: Database, settings: Settings) -> None:
    with scratch.connect(admin=True, autocommit=True) as conn:
        assert migrate.recorded_revisions(conn) == []
    said: list[str] = []
    bootstrap.prepare_database(settings, said.append, scratch)
    assert "Schéma à jour (migrations Alembic appliquées)." in said
    with scratch.connect(admin=True, autocommit=True) as conn:
        assert migrate.schema_at_head(conn)


def test_load_train_and_admin_key_checks(
    scratch: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap.prepare_database(settings, lambda _m: None, scratch)
    said: list[str] = []

    # Empty tables: the dataset is loaded; loaded: nothing happens.
    assert bootstrap.load_if_empty(scratch, settings, said.append) is True
    assert bootstrap.load_if_empty(scratch, settings, said.append) is False
    assert "Jeu de données déjà chargé (1470 employés)." in said

    # No model: training runs (stubbed here); one registered: it does not.
    trained: list[str] = []

    def fake_train(db: Database, settings: Settings, **kwargs: Any) -> str:
        trained.append(db.owner_dsn)
        return "v-stub"

    monkeypatch.setattr("attrition.model.pipeline.train_and_register", fake_train)
    assert bootstrap.train_if_none(scratch, settings, said.append) == "v-stub"
    assert trained == [scratch.owner_dsn]
    with scratch.connect() as conn:
        conn.execute(
            "INSERT INTO model_versions (version, algorithm, hyper_parameters, features,"
            " metrics, threshold, threshold_criterion, data_fingerprint, code_version,"
            " library_versions, artifact, artifact_sha256)"
            " VALUES ('v-test', 'regression_logistique', '{}', '[]', '{}', 0.5, 'f2',"
            " repeat('0', 64), 'test', '{}', '\\x00', repeat('0', 64))"
        )
    assert bootstrap.train_if_none(scratch, settings, said.append) is None
    assert trained == [scratch.owner_dsn]

    # Dev without ATTRITION_ADMIN_KEY: a first admin key is created once.
    dev = settings.model_copy(update={"app_env": "dev"})
    first = bootstrap.ensure_admin_key(scratch, dev, said.append)
    assert first is not None and first.startswith("ftr_")
    said.clear()
    assert bootstrap.ensure_admin_key(scratch, dev, said.append) is None
    # The key was shown once; the next start says, in French, how to get a new one.
    assert any("attrition keys create" in line and "--role admin" in line for line in said)

    # With ATTRITION_ADMIN_KEY: imported once, then recognised without the key store.
    given = generate_key().full
    with_key = dev.model_copy(update={"admin_key": SecretStr(given)})
    assert bootstrap.ensure_admin_key(scratch, with_key, said.append) is None
    with scratch.connect() as conn:
        count = conn.execute("SELECT count(*) FROM api_keys WHERE name = 'admin-bootstrap'")
        assert count.fetchone() == (1,)

    def no_store(*args: Any, **kwargs: Any) -> bool:
        raise AssertionError("the key store must not be reached for a known key")

    monkeypatch.setattr("attrition.security.store.import_key", no_store)
    assert bootstrap.ensure_admin_key(scratch, with_key, said.append) is None


def test_first_admin_account_for_the_web_interface(scratch: Database, settings: Settings) -> None:
    bootstrap.prepare_database(settings, lambda _m: None, scratch)
    said: list[str] = []
    prod = settings.model_copy(update={"app_env": AppEnv.PROD})
    assert bootstrap.ensure_admin_user(scratch, prod, said.append) is None
    assert said == [
        "Aucun compte administrateur actif pour l'interface web : créez-en un avec "
        "« attrition users create --login <identifiant> --role admin » (ou définissez "
        "ATTRITION_ADMIN_PASSWORD avant le démarrage)."
    ]
    weak = prod.model_copy(update={"admin_password": SecretStr("admin")})
    with pytest.raises(ValidationError) as refused:
        bootstrap.ensure_admin_user(scratch, weak, said.append)
    assert refused.value.errors[0].field == "ATTRITION_ADMIN_PASSWORD"
    dev = settings.model_copy(update={"app_env": "dev"})
    said.clear()
    password = bootstrap.ensure_admin_user(scratch, dev, said.append)
    assert password is not None and password in said[0] and "« admin »" in said[0]
    with scratch.connect() as conn:
        row = conn.execute(
            "SELECT role::text, must_change_password, password_hash FROM users "
            "WHERE login = 'admin'"
        ).fetchone()
    assert row is not None and row[:2] == ("admin", True) and row[2].startswith("$argon2id$")
    said.clear()
    assert bootstrap.ensure_admin_user(scratch, dev, said.append) is None
    assert said == [
        "Interface web : le compte « admin » attend sa première connexion ; mot de passe "
        "perdu ? attrition users reset admin"
    ]


def test_first_admin_password_from_the_environment(scratch: Database, settings: Settings) -> None:
    bootstrap.prepare_database(settings, lambda _m: None, scratch)
    given = "Premier-Chef-Secret-9"  # pragma: allowlist secret
    prod = settings.model_copy(update={"app_env": AppEnv.PROD, "admin_password": SecretStr(given)})
    said: list[str] = []
    assert bootstrap.ensure_admin_user(scratch, prod, said.append) is None
    assert given not in said[0] and "ATTRITION_ADMIN_PASSWORD" in said[0]
    import asyncio

    from attrition.services.accounts import AccountService, connect_to

    service = AccountService(connect_to(scratch.owner_conninfo))
    signed = asyncio.run(service.sign_in("admin", given))
    assert signed.account.role == "admin" and signed.account.must_change_password
