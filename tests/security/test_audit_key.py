"""The audit key: configured in production; generated once, 0600, outside the database in dev."""

from __future__ import annotations

import stat
from pathlib import Path

from pydantic import SecretStr

from attrition.config import Settings
from attrition.db import chain
from attrition.security.secrets import AUDIT_KEY_FILE, audit_key, audit_key_text


def test_a_dev_key_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = Settings(app_env="dev", secrets_dir=tmp_path / "secrets", audit_key=None)
    first = audit_key(settings)
    file = tmp_path / "secrets" / AUDIT_KEY_FILE
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    assert audit_key(settings) == first  # read back, not drawn again
    assert len(audit_key_text(settings)) >= 40
    file.chmod(0o644)  # loosened by hand: put back to 0600 when read
    assert audit_key(settings) == first and stat.S_IMODE(file.stat().st_mode) == 0o600


def test_a_configured_key_is_used_and_sub_keys_differ(tmp_path: Path) -> None:
    settings = Settings(
        app_env="dev", secrets_dir=tmp_path, audit_key=SecretStr("Zq8vN2-kT5wR9yLm3xC7bH1jF4dS6gPa")
    )
    key = audit_key(settings)
    assert not (tmp_path / AUDIT_KEY_FILE).exists()
    assert key == chain.AuditKey.derive("Zq8vN2-kT5wR9yLm3xC7bH1jF4dS6gPa")
    assert len({key.record, key.link, key.checkpoint, key.erasure}) == 4
    other = chain.AuditKey.derive("another-key-another-key-another-key")
    values = ["r"] + [None] * (len(chain.RECORD_FIELDS) - 1)
    assert chain.record_mac(key, values) != chain.record_mac(other, values)
