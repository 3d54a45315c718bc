"""API key format: entropy, checksum, hashing, durations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from attrition.errors import AuthenticationError, ValidationError
from attrition.security.keys import generate_key, hash_key, parse_duration, parse_key, verify_key


def test_generated_keys_parse_and_differ() -> None:
    a, b = generate_key(), generate_key()
    assert a.full != b.full and a.full.startswith("ftr_")
    assert parse_key(a.full) == a
    assert len(a.full) == len("ftr_") + 8 + 1 + 32 + 6


def test_checksum_catches_a_typo() -> None:
    key = generate_key().full
    typo = key[:10] + ("a" if key[10] != "a" else "b") + key[11:]
    with pytest.raises(AuthenticationError, match="somme de contrôle"):
        parse_key(typo)


def test_hash_is_keyed_and_verifiable() -> None:
    key = generate_key().full
    digest = hash_key("secret-1", key)
    assert len(digest) == 32 and digest != hash_key("secret-2", key)
    assert verify_key("secret-1", key, digest) and not verify_key("secret-2", key, digest)


def test_durations() -> None:
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("30m") == timedelta(minutes=30)
    with pytest.raises(ValidationError, match="Durée invalide"):
        parse_duration("demain")


def test_key_roles_are_the_database_roles() -> None:
    from attrition.db.models import Role
    from attrition.security.store import ROLES

    assert tuple(role.value for role in Role) == ROLES
