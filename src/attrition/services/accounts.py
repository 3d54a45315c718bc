"""People's accounts: creation by an admin, sign-in with throttling, server-side sessions.

A person signs in with a login and a password (Argon2id, :mod:`attrition.security.passwords`);
a session is a random token (``secrets``, 256 bits) kept by the browser, of which only the
SHA-256 is stored, checked against PostgreSQL on every request: sign-out, a disabled account
or an admin's revocation end it at once in every worker. Each account has an audit identity
(a row of ``api_keys`` whose secret is never issued) so that what a person scores is recorded
and owned exactly like what a key scores.

Throttling is per account: after ``FREE_FAILURES`` failed sign-ins in a row the account waits
30 s, then twice as long at each new failure (at most 15 min); a success resets it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, errors

from attrition.db import accounts as repo
from attrition.errors import (
    AuthenticationError,
    ConflictError,
    FieldError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)
from attrition.security import passwords
from attrition.security.keys import generate_key
from attrition.security.sessions import SESSION_MAX_AGE_S

Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection[Any]]]

#: Absolute lifetime of a web session (seconds): one working day, as the cookie's.
SESSION_LIFETIME_S = SESSION_MAX_AGE_S
#: A session unused for this long ends (seconds).
SESSION_IDLE_S = 3600
#: ``last_seen_at`` is written at most this often (seconds).
TOUCH_EVERY_S = 60
FREE_FAILURES = 5
LOCK_BASE_S = 30
LOCK_MAX_S = 15 * 60
#: Longest password read at sign-in (longer ones are refused without hashing them).
MAX_SIGN_IN_PASSWORD = 1024
ROLES = ("admin", "predicteur", "auditeur", "rh")
LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
BAD_CREDENTIALS = "Identifiant ou mot de passe incorrect."


def connect_to(conninfo: str) -> Connect:
    """A connection factory for one-off work outside the API (the CLI, the start-up)."""

    @asynccontextmanager
    async def connect() -> AsyncIterator[AsyncConnection[Any]]:
        async with await AsyncConnection.connect(conninfo) as conn:
            yield conn

    return connect


@dataclass(frozen=True, slots=True)
class Account:
    """The person behind a valid session."""

    session_id: int
    user_id: int
    login: str
    role: str
    api_key_id: int
    key_id: str
    must_change_password: bool


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str
    account: Account


@dataclass(frozen=True, slots=True)
class Issued:
    """An account created or reset, with its one-time password (shown once)."""

    login: str
    role: str
    password: str


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def normalize_login(raw: str) -> str:
    return raw.strip().lower()


def check_login(login: str) -> str:
    login = normalize_login(login)
    if not LOGIN_RE.fullmatch(login):
        problem = (
            "identifiant invalide : 2 à 64 caractères parmi a-z, 0-9, point, tiret et tiret bas, "
            "commençant par une lettre ou un chiffre"
        )
        raise ValidationError(
            f"Identifiant refusé : {problem}.", errors=[FieldError("login", problem)]
        )
    return login


def check_role(role: str) -> str:
    if role not in ROLES:
        problem = f"rôle inconnu « {role} » (rôles : {', '.join(ROLES)})"
        raise ValidationError(f"Rôle refusé : {problem}.", errors=[FieldError("role", problem)])
    return role


def _wait_message(locked_until: datetime) -> RateLimitedError:
    seconds = max(1, int((locked_until - datetime.now(UTC)).total_seconds() + 0.999))
    minutes = (seconds + 59) // 60
    wait = f"{seconds} s" if seconds < 60 else f"{minutes} min"
    return RateLimitedError(
        f"Trop d'essais infructueux pour ce compte : réessayez dans {wait}.",
        retry_after=seconds,
    )


class AccountService:
    """Accounts and sessions over a connection factory (the app's pool, or the CLI's owner)."""

    def __init__(
        self,
        connect: Connect,
        *,
        lifetime_s: int = SESSION_LIFETIME_S,
        idle_s: int = SESSION_IDLE_S,
        concurrent_hashes: int = 2,
    ) -> None:
        self.connect = connect
        self.lifetime_s = lifetime_s
        self.idle_s = idle_s
        # Argon2id takes 19 MiB and tens of milliseconds per hash: a bounded number at a time,
        # off the event loop.
        self._hashing = asyncio.Semaphore(concurrent_hashes)

    async def _verify(self, password: str, stored: str) -> tuple[bool, str | None]:
        async with self._hashing:
            return await asyncio.to_thread(passwords.verify_password, password, stored)

    async def _hash(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(passwords.hash_password, password)

    # ---- administration ------------------------------------------------------------------

    async def create_user(self, login: str, role: str, password: str | None = None) -> Issued:
        """A new account with a one-time password (random unless given), to be changed at
        first sign-in."""
        login, role = check_login(login), check_role(role)
        if password is None:
            password = passwords.one_time_password()
        else:
            passwords.check_strength(password, login, field="ATTRITION_ADMIN_PASSWORD")
        password_hash = await self._hash(password)
        async with self.connect() as conn, conn.transaction():
            if await repo.login_exists(conn, login):
                raise ConflictError(
                    f"Le compte « {login} » existe déjà.",
                    errors=[FieldError("login", "identifiant déjà pris")],
                )
            try:
                key_pk = await self._new_identity(conn, login, role)
                await repo.insert_user(
                    conn, login=login, role=role, password_hash=password_hash, api_key_id=key_pk
                )
            except errors.UniqueViolation:
                raise ConflictError(
                    f"Le compte « {login} » existe déjà.",
                    errors=[FieldError("login", "identifiant déjà pris")],
                ) from None
        return Issued(login=login, role=role, password=password)

    async def list_users(self) -> list[repo.UserRow]:
        async with self.connect() as conn:
            return await repo.list_users(conn)

    async def disable_user(self, login: str) -> None:
        """Disable the account: every session ends at once, sign-in is refused."""
        login = normalize_login(login)
        async with self.connect() as conn, conn.transaction():
            user_id = await repo.disable_user(conn, login)
            if user_id is None:
                found = await repo.get_user(conn, login)
                if found is None:
                    raise NotFoundError(f"Compte « {login} » inconnu.")
                return  # already disabled
            await repo.end_sessions_of(conn, user_id)

    async def enable_user(self, login: str) -> bool:
        """Re-enable a disabled account; False if it was not disabled (nothing done).

        Disabling revoked the account's audit identity, and revocation is one-way: the account
        comes back under a new identity (same ``compte:<login>`` name and role), so the audit
        trail keeps when it was disabled (the old identity's ``revoked_at``) and when it was
        re-enabled (the new one's ``created_at``). The password is unchanged; the sign-in
        throttling of the account is cleared.
        """
        login = normalize_login(login)
        async with self.connect() as conn, conn.transaction():
            found = await repo.get_user(conn, login)
            if found is None:
                raise NotFoundError(f"Compte « {login} » inconnu.")
            user, _ = found
            if user.disabled_at is None:
                return False
            key_pk = await self._new_identity(conn, login, user.role)
            return await repo.enable_user(conn, login, key_pk) is not None

    async def _new_identity(self, conn: AsyncConnection[Any], login: str, role: str) -> int:
        """A new audit identity (an ``api_keys`` row) for the account ``login``."""
        principal = generate_key()
        return await repo.insert_principal(
            conn,
            key_id=principal.key_id,
            name=f"compte:{login}",
            role=role,
            # No key is ever issued for this identity: a random hash matches none.
            key_hash=secrets.token_bytes(32),
        )

    async def reset_password(self, login: str) -> Issued:
        """A new one-time password; the account's sessions end and its throttling is cleared."""
        login = normalize_login(login)
        password = passwords.one_time_password()
        password_hash = await self._hash(password)
        async with self.connect() as conn, conn.transaction():
            found = await repo.get_user(conn, login)
            if found is None:
                raise NotFoundError(f"Compte « {login} » inconnu.")
            user, _ = found
            await repo.set_password(conn, user.id, password_hash, must_change=True)
            await repo.end_sessions_of(conn, user.id)
        return Issued(login=login, role=user.role, password=password)

    async def list_sessions(self) -> list[repo.SessionRow]:
        async with self.connect() as conn:
            return await repo.list_sessions(conn, self.idle_s)

    async def end_session(self, session_id: int) -> None:
        async with self.connect() as conn, conn.transaction():
            if not await repo.end_session(conn, session_id):
                raise NotFoundError(f"Session {session_id} inconnue ou déjà terminée.")

    # ---- signing in and out --------------------------------------------------------------

    async def sign_in(self, login: str, password: str) -> SignedIn:
        """Check the password (throttled per account) and open a session."""
        login = normalize_login(login)
        if not login or not password:
            raise AuthenticationError("Saisissez votre identifiant et votre mot de passe.")
        async with self.connect() as conn:
            found = await repo.get_user(conn, login) if len(login) <= 64 else None
            await conn.commit()
        if found is None or len(password) > MAX_SIGN_IN_PASSWORD:
            # As long as a real check, so that timing does not tell which logins exist.
            await self._verify(password[:MAX_SIGN_IN_PASSWORD], passwords.dummy_hash())
            raise AuthenticationError(BAD_CREDENTIALS)
        user, stored = found
        if user.locked_until is not None and user.locked_until > datetime.now(UTC):
            raise _wait_message(user.locked_until)
        valid, new_hash = await self._verify(password, stored)
        async with self.connect() as conn, conn.transaction():
            if not valid:
                failures, locked_until = await repo.record_failure(
                    conn, user.id, free=FREE_FAILURES, base_s=LOCK_BASE_S, max_s=LOCK_MAX_S
                )
            elif user.disabled_at is not None:
                raise AuthenticationError(
                    "Ce compte est désactivé : adressez-vous à un administrateur."
                )
            else:
                await repo.record_success(conn, user.id, new_hash)
                key_id = await repo.principal_key_id(conn, user.api_key_id)
                await repo.purge_sessions(conn)
                token = secrets.token_urlsafe(32)
                session_id = await repo.insert_session(
                    conn, user.id, token_hash(token), self.lifetime_s
                )
        if not valid:
            if locked_until is not None and failures >= FREE_FAILURES:
                raise AuthenticationError(
                    f"{BAD_CREDENTIALS} {_wait_message(locked_until).message}"
                )
            raise AuthenticationError(BAD_CREDENTIALS)
        account = Account(
            session_id=session_id,
            user_id=user.id,
            login=user.login,
            role=user.role,
            api_key_id=user.api_key_id,
            key_id=key_id,
            must_change_password=user.must_change_password,
        )
        return SignedIn(token=token, account=account)

    async def session(self, token: str) -> Account | None:
        """The person of a valid session token, or None (ended, expired, idle, disabled)."""
        if not token or len(token) > 128:
            return None
        digest = token_hash(token)
        async with self.connect() as conn:
            found = await repo.active_session(conn, digest, self.idle_s)
            if found is not None:
                age = (datetime.now(UTC) - found.last_seen_at).total_seconds()
                if age > TOUCH_EVERY_S:
                    await repo.touch_session(conn, found.session_id)
            await conn.commit()
        if found is None:
            return None
        return Account(
            session_id=found.session_id,
            user_id=found.user_id,
            login=found.login,
            role=found.role,
            api_key_id=found.api_key_id,
            key_id=found.key_id,
            must_change_password=found.must_change_password,
        )

    async def sign_out(self, account: Account) -> None:
        async with self.connect() as conn, conn.transaction():
            await repo.end_session(conn, account.session_id)

    async def change_password(self, account: Account, current: str, new: str, confirm: str) -> None:
        """Change the signed-in person's password; the person's other sessions end."""
        if not hmac.compare_digest(
            new.encode("utf-8", "surrogatepass"), confirm.encode("utf-8", "surrogatepass")
        ):
            problem = "la confirmation ne correspond pas au nouveau mot de passe"
            raise ValidationError(
                f"Mot de passe refusé : {problem}.", errors=[FieldError("confirmation", problem)]
            )
        passwords.check_strength(new, account.login)
        async with self.connect() as conn:
            found = await repo.get_user(conn, account.login)
            await conn.commit()
        if found is None:
            raise AuthenticationError(BAD_CREDENTIALS)
        user, stored = found
        valid, _ = await self._verify(current[:MAX_SIGN_IN_PASSWORD], stored)
        if not valid:
            problem = "mot de passe actuel incorrect"
            raise ValidationError(
                f"Mot de passe refusé : {problem}.",
                errors=[FieldError("mot_de_passe_actuel", problem)],
            )
        if current == new:
            problem = "le nouveau mot de passe doit différer de l'actuel"
            raise ValidationError(
                f"Mot de passe refusé : {problem}.",
                errors=[FieldError("nouveau_mot_de_passe", problem)],
            )
        new_hash = await self._hash(new)
        async with self.connect() as conn, conn.transaction():
            await repo.set_password(conn, user.id, new_hash, must_change=False)
            await repo.end_sessions_of(conn, user.id, keep=account.session_id)
