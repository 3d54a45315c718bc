"""Web sessions: the cookie's lifetime, its signing secret, and when it must be ``Secure``.

The session itself lives in PostgreSQL (:mod:`attrition.services.accounts`): the cookie
carries a random token whose SHA-256 is stored, plus the visit's CSRF token. The cookie is
signed (itsdangerous) with a key derived from ``ATTRITION_SECRET_KEY`` (HKDF-SHA-256, its own
label), so that it never equals the secret that hashes API keys.
"""

from __future__ import annotations

import ipaddress

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


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without the port (``[::1]:8000`` -> ``::1``)."""
    header = header.strip()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a Host header's name, without port) is this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def cookie_must_be_secure(scheme: str, host: str) -> bool:
    """A session cookie is ``Secure`` unless the page is plain HTTP on the loopback address.

    On the loopback address the cookie never crosses a network (and a ``Secure`` cookie would
    not be kept over plain HTTP there); anywhere else it could be read on the wire.
    """
    return not (scheme == "http" and is_loopback(host))
