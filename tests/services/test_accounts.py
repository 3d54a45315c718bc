"""People's accounts and sessions against the real database, as the application role."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
import pytest
from sqlalchemy import text

from attrition.config import Settings
from attrition.db.engine import Database
from attrition.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)
from attrition.security import passwords
from attrition.services.accounts import FREE_FAILURES, AccountService, token_hash

T = TypeVar("T")
STRONG = "Correct-Cheval-42!"


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


@pytest.fixture
def service(database: Database) -> AccountService:
    """The service as the API runs it: connected as the least-privileged application role."""

    @asynccontextmanager
    async def connect() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(database.app_conninfo) as conn:
            yield conn

    return AccountService(connect)


def login() -> str:
    return f"rh-{uuid.uuid4().hex[:10]}"


def test_create_sign_in_and_change_the_one_time_password(
    service: AccountService, database: Database
) -> None:
    name = login()
    issued = run(service.create_user(name.upper(), "predicteur"))
    assert issued.login == name and issued.role == "predicteur"
    passwords.check_strength(issued.password, name)  # one-time passwords obey the rule
    with database.owner_engine().connect() as conn:
        row = conn.execute(
            text(
                "SELECT u.password_hash, u.must_change_password, k.name, k.role::text "
                "FROM users u JOIN api_keys k ON k.id = u.api_key_id WHERE u.login = :l"
            ),
            {"l": name},
        ).one()
    assert row.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert issued.password not in row.password_hash
    assert row.must_change_password and row.name == f"compte:{name}" and row.role == "predicteur"

    signed = run(service.sign_in(f"  {name} ", issued.password))
    assert signed.account.login == name and signed.account.must_change_password
    assert len(signed.token) >= 43
    assert run(service.session(signed.token)) == signed.account
    with database.owner_engine().connect() as conn:
        stored = conn.execute(
            text("SELECT token_hash FROM web_sessions WHERE id = :i"),
            {"i": signed.account.session_id},
        ).scalar_one()
    assert bytes(stored) == token_hash(signed.token) and signed.token.encode() not in bytes(stored)

    other = run(service.sign_in(name, issued.password))
    with pytest.raises(ValidationError) as weak:
        run(service.change_password(signed.account, issued.password, "court", "court"))
    assert weak.value.errors[0].field == "nouveau_mot_de_passe"
    assert "CNIL" in weak.value.message
    with pytest.raises(ValidationError) as mismatch:
        run(service.change_password(signed.account, issued.password, STRONG, STRONG + "x"))
    assert mismatch.value.errors[0].field == "confirmation"
    with pytest.raises(ValidationError) as wrong:
        run(service.change_password(signed.account, "pas-le-bon-Mot-2", STRONG, STRONG))
    assert wrong.value.errors[0].field == "mot_de_passe_actuel"
    run(service.change_password(signed.account, issued.password, STRONG, STRONG))

    assert run(service.session(signed.token)) is not None  # this browser stays signed in
    assert run(service.session(other.token)) is None  # the others are signed out
    with pytest.raises(AuthenticationError):
        run(service.sign_in(name, issued.password))
    again = run(service.sign_in(name, STRONG))
    assert not again.account.must_change_password


def test_unknown_login_and_wrong_password_say_the_same(service: AccountService) -> None:
    name = login()
    run(service.create_user(name, "auditeur"))
    messages = set()
    for who, password in ((name, "Mauvais-mot-de-passe-1"), ("personne-" + name, STRONG)):
        with pytest.raises(AuthenticationError) as refused:
            run(service.sign_in(who, password))
        messages.add(refused.value.message)
    assert messages == {"Identifiant ou mot de passe incorrect."}
    assert not any("Clé API" in m for m in messages)
    with pytest.raises(AuthenticationError, match="Saisissez"):
        run(service.sign_in("", ""))


def test_failed_sign_ins_throttle_the_account(service: AccountService, database: Database) -> None:
    name = login()
    issued = run(service.create_user(name, "predicteur"))
    for attempt in range(1, FREE_FAILURES + 1):
        with pytest.raises(AuthenticationError) as refused:
            run(service.sign_in(name, f"Faux-mot-de-passe-{attempt}"))
    assert "réessayez dans 30 s" in refused.value.message
    # Locked: even the right password waits, and says how long.
    with pytest.raises(RateLimitedError) as locked:
        run(service.sign_in(name, issued.password))
    assert 1 <= locked.value.retry_after <= 30 and "réessayez dans" in locked.value.message
    with database.owner_engine().begin() as conn:
        conn.execute(
            text("UPDATE users SET locked_until = now() - interval '1 second' WHERE login = :l"),
            {"l": name},
        )
    # One more failure after the wait doubles it.
    with pytest.raises(AuthenticationError, match="réessayez dans 1 min"):
        run(service.sign_in(name, "Encore-faux-mot-2"))
    with database.owner_engine().begin() as conn:
        conn.execute(
            text("UPDATE users SET locked_until = now() - interval '1 second' WHERE login = :l"),
            {"l": name},
        )
    run(service.sign_in(name, issued.password))
    with database.owner_engine().connect() as conn:
        failures = conn.execute(
            text("SELECT failed_attempts, locked_until FROM users WHERE login = :l"), {"l": name}
        ).one()
    assert tuple(failures) == (0, None)


def test_disable_and_reset_end_sessions_at_once(
    service: AccountService, database: Database
) -> None:
    name = login()
    issued = run(service.create_user(name, "predicteur"))
    first = run(service.sign_in(name, issued.password))
    listed = {s.id: s for s in run(service.list_sessions())}
    assert listed[first.account.session_id].login == name

    reset = run(service.reset_password(name))
    assert reset.password != issued.password
    assert run(service.session(first.token)) is None
    second = run(service.sign_in(name, reset.password))
    assert second.account.must_change_password

    run(service.disable_user(name))
    run(service.disable_user(name))  # twice is harmless
    assert run(service.session(second.token)) is None
    with pytest.raises(AuthenticationError, match="désactivé"):
        run(service.sign_in(name, reset.password))
    with database.owner_engine().connect() as conn:
        revoked = conn.execute(
            text(
                "SELECT k.revoked_at IS NOT NULL FROM users u JOIN api_keys k "
                "ON k.id = u.api_key_id WHERE u.login = :l"
            ),
            {"l": name},
        ).scalar_one()
    assert revoked  # the audit identity cannot act either
    with pytest.raises(NotFoundError):
        run(service.disable_user("inconnu-" + name))
    with pytest.raises(NotFoundError):
        run(service.reset_password("inconnu-" + name))


def test_admin_ends_one_session_and_sign_out_ends_its_own(service: AccountService) -> None:
    name = login()
    issued = run(service.create_user(name, "admin"))
    one = run(service.sign_in(name, issued.password))
    two = run(service.sign_in(name, issued.password))
    run(service.end_session(one.account.session_id))
    assert run(service.session(one.token)) is None
    assert run(service.session(two.token)) is not None
    with pytest.raises(NotFoundError):
        run(service.end_session(one.account.session_id))
    run(service.sign_out(two.account))
    assert run(service.session(two.token)) is None
    assert all(s.login != name for s in run(service.list_sessions()))
    assert run(service.session("")) is None and run(service.session("x" * 500)) is None


def test_idle_and_expired_sessions_end(service: AccountService, database: Database) -> None:
    name = login()
    issued = run(service.create_user(name, "auditeur"))
    idle = run(service.sign_in(name, issued.password))
    old = run(service.sign_in(name, issued.password))
    with database.owner_engine().begin() as conn:
        conn.execute(
            text("UPDATE web_sessions SET last_seen_at = now() - interval '2 hours' WHERE id = :i"),
            {"i": idle.account.session_id},
        )
        conn.execute(
            text("UPDATE web_sessions SET expires_at = now() - interval '1 second' WHERE id = :i"),
            {"i": old.account.session_id},
        )
    assert run(service.session(idle.token)) is None
    assert run(service.session(old.token)) is None
    # Revoking the account's audit identity (attrition keys revoke) ends its sessions too.
    live = run(service.sign_in(name, issued.password))
    assert run(service.session(live.token)) is not None
    with database.owner_engine().begin() as conn:
        conn.execute(
            text(
                "UPDATE api_keys SET revoked_at = now() WHERE id = "
                "(SELECT api_key_id FROM users WHERE login = :l)"
            ),
            {"l": name},
        )
    assert run(service.session(live.token)) is None


def test_bad_logins_roles_and_duplicates(service: AccountService) -> None:
    name = login()
    run(service.create_user(name, "auditeur"))
    with pytest.raises(ConflictError):
        run(service.create_user(name, "auditeur"))
    for bad in ("a", "-x", "avec espace", "é" * 3, "x" * 65):
        with pytest.raises(ValidationError) as refused:
            run(service.create_user(bad, "auditeur"))
        assert refused.value.errors[0].field == "login"
    with pytest.raises(ValidationError) as role:
        run(service.create_user(login(), "root"))
    assert role.value.errors[0].field == "role"


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("Abcdef12345!", True),  # 12 characters, 4 kinds
        ("Abcdef1234!", False),  # 11
        ("Abcdefgh123456", True),  # 14, 3 kinds
        ("Abcdefgh12345", False),  # 13, 3 kinds
        ("cheval correct batte", True),  # 20, a passphrase (lower case and spaces)
        ("cheval correct b", True),  # 16, 2 kinds
        ("chevalcorrectbatteri", True),  # 20, 1 kind
        ("chevalcorrectbatter", False),  # 19, 1 kind
        ("12345678901234567890123", False),  # digits only
        ("aaaaaaaaaaaaaaaaaaaaaaaaa", False),  # repetitive
        ("Mon-login-rh-Secret-1", False),  # holds the login
        ("A1!" + "b" * 200, False),  # too long
    ],
)
def test_password_rule(password: str, accepted: bool) -> None:
    if accepted:
        passwords.check_strength(password, "login-rh")
    else:
        with pytest.raises(ValidationError):
            passwords.check_strength(password, "login-rh")


def test_hashes_are_salted_and_upgraded() -> None:
    first, second = passwords.hash_password(STRONG), passwords.hash_password(STRONG)
    assert first != second
    assert passwords.verify_password(STRONG, first) == (True, None)
    assert passwords.verify_password(STRONG + "x", first) == (False, None)
    assert passwords.verify_password(STRONG, "pas-un-hash") == (False, None)
    from pwdlib.hashers.argon2 import Argon2Hasher

    weaker = Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1).hash(STRONG)
    valid, upgraded = passwords.verify_password(STRONG, weaker)
    assert valid and upgraded is not None and "m=19456,t=2,p=1" in upgraded


def test_the_application_role_gets_only_what_accounts_need(
    database: Database, settings: Settings
) -> None:
    checks = {
        "users SELECT": "has_table_privilege(%(r)s, 'users', 'SELECT')",
        "users INSERT": "has_table_privilege(%(r)s, 'users', 'INSERT')",
        "users DELETE": "has_table_privilege(%(r)s, 'users', 'DELETE')",
        "users TRUNCATE": "has_table_privilege(%(r)s, 'users', 'TRUNCATE')",
        "users.login UPDATE": "has_column_privilege(%(r)s, 'users', 'login', 'UPDATE')",
        "users.role UPDATE": "has_column_privilege(%(r)s, 'users', 'role', 'UPDATE')",
        "users.api_key_id UPDATE": "has_column_privilege(%(r)s, 'users', 'api_key_id', 'UPDATE')",
        "users.password_hash UPDATE": (
            "has_column_privilege(%(r)s, 'users', 'password_hash', 'UPDATE')"
        ),
        "web_sessions DELETE": "has_table_privilege(%(r)s, 'web_sessions', 'DELETE')",
        "web_sessions.token_hash UPDATE": (
            "has_column_privilege(%(r)s, 'web_sessions', 'token_hash', 'UPDATE')"
        ),
        "web_sessions.expires_at UPDATE": (
            "has_column_privilege(%(r)s, 'web_sessions', 'expires_at', 'UPDATE')"
        ),
        "web_sessions.revoked_at UPDATE": (
            "has_column_privilege(%(r)s, 'web_sessions', 'revoked_at', 'UPDATE')"
        ),
        "users_id_seq USAGE": "has_sequence_privilege(%(r)s, 'users_id_seq', 'USAGE')",
        "web_sessions_id_seq USAGE": (
            "has_sequence_privilege(%(r)s, 'web_sessions_id_seq', 'USAGE')"
        ),
    }
    with database.connect() as conn:
        row = conn.execute(
            "SELECT " + ", ".join(checks.values()), {"r": settings.db.app_role}
        ).fetchone()
    assert dict(zip(checks, row or (), strict=True)) == {
        "users SELECT": True,
        "users INSERT": True,
        "users DELETE": False,
        "users TRUNCATE": False,
        "users.login UPDATE": False,
        "users.role UPDATE": False,
        # Re-enabling an account gives it a new audit identity (revocation is one-way). This
        # adds no power: the role may already insert api_keys rows of any role.
        "users.api_key_id UPDATE": True,
        "users.password_hash UPDATE": True,
        "web_sessions DELETE": True,
        "web_sessions.token_hash UPDATE": False,
        "web_sessions.expires_at UPDATE": False,
        "web_sessions.revoked_at UPDATE": True,
        "users_id_seq USAGE": True,
        "web_sessions_id_seq USAGE": True,
    }
