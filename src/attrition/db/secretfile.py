"""One generated secret per file, mode 0600: the embedded server's passwords, the dev audit key."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)


def read_or_create(path: Path, *, nbytes: int = 32) -> str:
    """The secret stored in ``path``; a new random one (created 0600, never overwritten)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("secret %s lisible par d'autres (mode %o) : ramené à 0600", path, mode)
            path.chmod(0o600)
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
    return value
