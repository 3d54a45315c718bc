"""Settings: defaults, environment names, refusal of unsafe production settings."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

import pytest

from attrition.config import AppEnv, load_settings
from attrition.errors import ConfigurationError
from attrition.logs import JsonFormatter, configure_logging


def test_defaults_and_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "test")
    monkeypatch.setenv("ATTRITION_API__MAX_BATCH_SIZE", "50")
    monkeypatch.setenv("ATTRITION_DB__POOL_MAX_SIZE", "4")
    s = load_settings()
    assert s.app_env is AppEnv.TEST
    assert s.api.max_batch_size == 50
    assert s.db.pool_max_size == 4
    assert not s.is_prod and not s.json_logs


def test_prod_refuses_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.delenv("ATTRITION_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="ATTRITION_SECRET_KEY"):
        load_settings(_env_file=None)


def test_prod_refuses_short_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.setenv("ATTRITION_SECRET_KEY", "short-but-not-placeholder")
    with pytest.raises(ConfigurationError, match="trop court"):
        load_settings(_env_file=None)


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("a" * 32, "trop prévisible"),
        ("ab" * 20, "trop prévisible"),
        ("dev-secret-change-me-" + "0123456789abcdef" * 2, "valeur d'exemple"),
        ("my-production-secret-key-1234567890", "valeur d'exemple"),
    ],
)
def test_prod_refuses_low_entropy_or_placeholder_secrets(
    monkeypatch: pytest.MonkeyPatch, secret: str, reason: str
) -> None:
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.setenv("ATTRITION_PGDATA", "/data/pgdata")
    monkeypatch.setenv("ATTRITION_SECRET_KEY", secret)
    with pytest.raises(ConfigurationError, match=reason):
        load_settings(_env_file=None)


def test_prod_accepts_a_generated_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from attrition.config import secret_entropy_bits

    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.setenv("ATTRITION_PGDATA", "/data/pgdata")
    monkeypatch.setenv("ATTRITION_AUDIT_KEY", secrets.token_urlsafe(32))  # also required in prod
    for _ in range(20):
        generated = secrets.token_urlsafe(48)
        assert secret_entropy_bits(generated) > 200
        monkeypatch.setenv("ATTRITION_SECRET_KEY", generated)
        assert load_settings(_env_file=None).is_prod
    assert secret_entropy_bits(secrets.token_hex(32)) > 200


def test_trusted_proxies_must_be_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTRITION_API__TRUSTED_PROXIES", '["10.0.0.0/8", "proxy.example"]')
    with pytest.raises(ConfigurationError, match="proxy.example"):
        load_settings(_env_file=None)
    monkeypatch.setenv("ATTRITION_API__TRUSTED_PROXIES", '["10.0.0.0/8", "192.0.2.1"]')
    assert load_settings(_env_file=None).api.trusted_proxies == ["10.0.0.0/8", "192.0.2.1"]


def test_prod_refuses_a_database_that_would_not_persist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.setenv("ATTRITION_SECRET_KEY", secrets.token_urlsafe(32))
    monkeypatch.setenv("ATTRITION_AUDIT_KEY", AUDIT_KEY)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ATTRITION_PGDATA", raising=False)
    with pytest.raises(ConfigurationError, match="DATABASE_URL ou ATTRITION_PGDATA"):
        load_settings(_env_file=None)
    monkeypatch.setenv("ATTRITION_PGDATA", "/data/pgdata")
    s = load_settings(_env_file=None)
    assert s.is_prod and s.json_logs
    assert s.secret_key.get_secret_value() not in repr(s)


AUDIT_KEY = secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "ATTRITION_AUDIT_KEY manquant"),
        ("changeme", "ATTRITION_AUDIT_KEY manquant ou laissé à sa valeur par défaut"),
        ("k" * 20, "ATTRITION_AUDIT_KEY trop court"),
        ("ab" * 20, "ATTRITION_AUDIT_KEY trop prévisible"),
    ],
)
def test_prod_requires_a_strong_audit_key(
    monkeypatch: pytest.MonkeyPatch, value: str | None, reason: str
) -> None:
    monkeypatch.setenv("APP_ENV", "prod")
    monkeypatch.setenv("ATTRITION_SECRET_KEY", secrets.token_urlsafe(32))
    monkeypatch.setenv("ATTRITION_PGDATA", "/data/pgdata")
    if value is None:
        monkeypatch.delenv("ATTRITION_AUDIT_KEY", raising=False)
    else:
        monkeypatch.setenv("ATTRITION_AUDIT_KEY", value)
    with pytest.raises(ConfigurationError, match=reason):
        load_settings(_env_file=None)
    monkeypatch.setenv("ATTRITION_AUDIT_KEY", AUDIT_KEY)
    settings = load_settings(_env_file=None)
    assert settings.audit_key is not None and AUDIT_KEY not in repr(settings)


def test_json_logs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTRITION_LOG_JSON", "true")
    configure_logging(load_settings())
    logging.getLogger("attrition.test").info("bonjour", extra={"request_id": "r1"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message"] == "bonjour" and record["request_id"] == "r1"
    assert isinstance(JsonFormatter().format(logging.makeLogRecord({"msg": "x"})), str)
    logging.getLogger().handlers.clear()


def test_pgdata_persistence_rule(tmp_path: Path) -> None:
    from attrition.db.engine import pgdata_persists

    assert pgdata_persists(None) is False
    assert pgdata_persists(tmp_path / "pg") is True
    assert pgdata_persists(tmp_path / "vol" / "pg", volume=tmp_path / "vol") is False
    assert pgdata_persists(Path("/proc/pg"), volume=Path("/proc")) is True  # a mount point
