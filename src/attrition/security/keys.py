"""API key format, generation and verification.

A key looks like ``ftr_k3x9q2mw_<32 random base62 chars><6-char checksum>``:

* ``ftr_`` makes a leaked key recognisable by secret scanners;
* the 8-character public key id finds the stored record without scanning the table;
* 32 base62 characters carry about 190 bits of entropy (the bar is 128);
* a CRC-32 checksum (base62, like GitHub's tokens) refuses a mistyped key before any
  database work.

Only ``HMAC-SHA-256(server secret, key)`` is stored; comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import zlib
from dataclasses import dataclass
from datetime import timedelta

from attrition.errors import AuthenticationError, ValidationError

PREFIX = "ftr_"
_ALPHABET = string.digits + string.ascii_letters
_ID_ALPHABET = string.digits + string.ascii_lowercase
_KEY_RE = re.compile(r"^ftr_([0-9a-z]{8})_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$")


@dataclass(frozen=True, slots=True)
class ParsedKey:
    key_id: str
    full: str


def _base62(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        out.append(_ALPHABET[digit])
    return "".join(reversed(out))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), 6)


def generate_key() -> ParsedKey:
    """A new random key and its public id."""
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    random_part = "".join(secrets.choice(_ALPHABET) for _ in range(32))
    body = f"{PREFIX}{key_id}_{random_part}"
    return ParsedKey(key_id=key_id, full=body + _checksum(body))


def parse_key(raw: str) -> ParsedKey:
    """Check the key's shape and checksum; raise AuthenticationError without touching the DB."""
    match = _KEY_RE.match(raw.strip())
    if match is None:
        raise AuthenticationError("Clé API mal formée (format attendu : ftr_<id>_<secret>).")
    body = raw.strip()[:-6]
    if not hmac.compare_digest(_checksum(body), match.group(3)):
        raise AuthenticationError("Clé API invalide (somme de contrôle incorrecte).")
    return ParsedKey(key_id=match.group(1), full=raw.strip())


def hash_key(secret: str, key: str) -> bytes:
    """The stored form of a key: HMAC-SHA-256 keyed with the server-side secret."""
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).digest()


def verify_key(secret: str, key: str, stored: bytes) -> bool:
    return hmac.compare_digest(hash_key(secret, key), stored)


_DURATION_RE = re.compile(r"^(\d+)\s*([dhm])$")


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h`` or ``30m`` as a timedelta (for ``--expires-in``)."""
    match = _DURATION_RE.match(text.strip().lower())
    if match is None or int(match.group(1)) <= 0:
        raise ValidationError(f"Durée invalide « {text} » : utilisez par exemple 90d, 12h ou 30m.")
    amount, unit = int(match.group(1)), match.group(2)
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount)}.get(
        unit, timedelta(minutes=amount)
    )
