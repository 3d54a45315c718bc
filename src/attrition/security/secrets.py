"""Generated secrets of a dev or embedded setup: one file each, mode 0600, outside the repo.

The embedded PostgreSQL's role passwords and, when ``ATTRITION_AUDIT_KEY`` is not set outside
production, the audit key are drawn once with :mod:`secrets` and kept in the secrets folder
(``var/secrets`` by default, beside the database's data directory but never inside it: the
database must not hold the audit key). In production the audit key comes from the
environment and is checked by the settings' validator.
"""

from __future__ import annotations

from attrition.config import Settings
from attrition.db.chain import AuditKey
from attrition.db.secretfile import read_or_create

AUDIT_KEY_FILE = "audit.key"


def audit_key(settings: Settings) -> AuditKey:
    """The audit key: ``ATTRITION_AUDIT_KEY``, else (outside production) a generated one."""
    if settings.audit_key is not None:
        return AuditKey.derive(settings.audit_key.get_secret_value())
    if settings.is_prod:  # pragma: no cover - refused by the settings' validator
        raise RuntimeError("ATTRITION_AUDIT_KEY is required in production")
    return AuditKey.derive(read_or_create(settings.resolved_secrets_dir / AUDIT_KEY_FILE))


def audit_key_text(settings: Settings) -> str:
    """The audit key as configured or generated (to hand to worker processes)."""
    if settings.audit_key is not None:
        return settings.audit_key.get_secret_value()
    return read_or_create(settings.resolved_secrets_dir / AUDIT_KEY_FILE)


__all__ = ["AUDIT_KEY_FILE", "audit_key", "audit_key_text", "read_or_create"]
