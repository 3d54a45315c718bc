"""Web sessions: the signing secret of the session cookie and the sealed API key inside it.

The web interface signs users in with their API key and re-authenticates that key on every
request through the same :class:`~attrition.security.clients.Authenticator` as the API, so
a revoked key is refused at once. The session cookie is signed (itsdangerous), but a signed
cookie is readable: the key is therefore also encrypted (Fernet, AES-128-CBC + HMAC), so
that a leaked cookie gives at most a web session until it expires, never the API key.
Both keys are derived from ``ATTRITION_SECRET_KEY`` with distinct labels (HKDF-SHA-256), so
neither equals the secret that hashes API keys.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: Lifetime of a web session (seconds): one working day.
SESSION_MAX_AGE_S = 8 * 3600


def derive(secret: str, label: str) -> bytes:
    """32 bytes derived from ``secret`` for one purpose (HKDF-SHA-256, ``label`` as info)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"attrition:{label}".encode()
    ).derive(secret.encode())


def session_signing_key(secret: str) -> str:
    """The secret that signs the session cookie."""
    return derive(secret, "web-session-signing").hex()


class KeySealer:
    """Encrypts an API key for the session cookie and opens it again."""

    def __init__(self, secret: str, *, max_age_s: int = SESSION_MAX_AGE_S) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive(secret, "web-session-key")))
        self.max_age_s = max_age_s

    def seal(self, key: str) -> str:
        return self._fernet.encrypt(key.encode()).decode("ascii")

    def open(self, token: str) -> str | None:
        """The key, or ``None`` if the token was altered, made with another secret or expired."""
        try:
            return self._fernet.decrypt(token.encode("ascii"), ttl=self.max_age_s).decode()
        except (InvalidToken, UnicodeError, ValueError):
            return None
