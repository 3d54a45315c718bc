"""Generated secrets of a dev or embedded setup: one file each, mode 0600, outside the repo.

The embedded PostgreSQL's role passwords and, when ``ATTRITION_AUDIT_KEY`` is not set outside
production, the audit key are drawn once with :mod:`secrets` and kept in the secrets folder
(``var/secrets`` by default, beside the database's data directory but never inside it: the
database must not hold the audit key). In production the audit key comes from the
environment and is checked by the settings' validator.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from attrition.config import Settings
from attrition.db.chain import AuditKey

log = logging.getLogger(__name__)

AUDIT_KEY_FILE = "audit.key"


def read_or_create(path: Path, *, nbytes: int = 32) -> str:
    """The secret stored in ``path``; a new random one (created 0600, never overwritten)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("secret %s readable by others (mode %o): set to 0600", path, mode)
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
    return value


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
