"""SQL of people's accounts and web sessions (async psycopg; the caller owns the transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

USER_COLUMNS = (
    "u.id, u.login, u.role::text, u.api_key_id, u.must_change_password, u.failed_attempts, "
    "u.locked_until, u.created_at, u.password_changed_at, u.last_sign_in_at, u.disabled_at"
)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    login: str
    role: str
    api_key_id: int
    must_change_password: bool
    failed_attempts: int
    locked_until: datetime | None
    created_at: datetime
    password_changed_at: datetime | None
    last_sign_in_at: datetime | None
    disabled_at: datetime | None


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: int
    login: str
    role: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ActiveSession:
    """A valid session and its person, as every web request reads it."""

    session_id: int
    user_id: int
    login: str
    role: str
    api_key_id: int
    key_id: str
    must_change_password: bool
    last_seen_at: datetime


async def insert_principal(
    conn: AsyncConnection[Any], *, key_id: str, name: str, role: str, key_hash: bytes
) -> int:
    cur = await conn.execute(
        "INSERT INTO api_keys (key_id, name, role, key_hash) VALUES (%s, %s, %s, %s) RETURNING id",
        (key_id, name, role, key_hash),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def insert_user(
    conn: AsyncConnection[Any], *, login: str, role: str, password_hash: str, api_key_id: int
) -> UserRow:
    cur = await conn.execute(
        "WITH u AS (INSERT INTO users (login, role, password_hash, api_key_id) "  # noqa: S608
        "VALUES (%s, %s, %s, %s) RETURNING *) "
        f"SELECT {USER_COLUMNS} FROM u",
        (login, role, password_hash, api_key_id),
    )
    row = await cur.fetchone()
    assert row is not None
    return UserRow(*row)


async def login_exists(conn: AsyncConnection[Any], login: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM users WHERE login = %s", (login,))
    return await cur.fetchone() is not None


async def get_user(conn: AsyncConnection[Any], login: str) -> tuple[UserRow, str] | None:
    """The user and its password hash."""
    cur = await conn.execute(
        f"SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.login = %s",  # noqa: S608
        (login,),
    )
    row = await cur.fetchone()
    return None if row is None else (UserRow(*row[:-1]), str(row[-1]))


async def list_users(conn: AsyncConnection[Any]) -> list[UserRow]:
    cur = await conn.execute(f"SELECT {USER_COLUMNS} FROM users u ORDER BY u.login")  # noqa: S608
    return [UserRow(*row) for row in await cur.fetchall()]


async def record_failure(
    conn: AsyncConnection[Any], user_id: int, *, free: int, base_s: int, max_s: int
) -> tuple[int, datetime | None]:
    """Count a failed sign-in; past ``free`` failures, lock for a doubling delay."""
    cur = await conn.execute(
        "UPDATE users SET failed_attempts = least(failed_attempts + 1, 10000), "
        "locked_until = CASE WHEN failed_attempts + 1 >= %(free)s THEN now() + "
        "least(make_interval(secs => %(base)s * power(2, least(failed_attempts + 1 - %(free)s, "
        "20))), make_interval(secs => %(max)s)) END "
        "WHERE id = %(id)s RETURNING failed_attempts, locked_until",
        {"id": user_id, "free": free, "base": base_s, "max": max_s},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), row[1]


async def record_success(
    conn: AsyncConnection[Any], user_id: int, new_hash: str | None = None
) -> None:
    await conn.execute(
        "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_sign_in_at = now(), "
        "password_hash = coalesce(%s, password_hash) WHERE id = %s",
        (new_hash, user_id),
    )


async def set_password(
    conn: AsyncConnection[Any], user_id: int, password_hash: str, *, must_change: bool
) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = %s, must_change_password = %s, failed_attempts = 0, "
        "locked_until = NULL, password_changed_at = CASE WHEN %s THEN NULL ELSE now() END "
        "WHERE id = %s",
        (password_hash, must_change, must_change, user_id),
    )


async def disable_user(conn: AsyncConnection[Any], login: str) -> int | None:
    """Disable the account and its audit identity; the user's id, None if unknown or done."""
    cur = await conn.execute(
        "UPDATE users SET disabled_at = now() WHERE login = %s AND disabled_at IS NULL "
        "RETURNING id, api_key_id",
        (login,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (row[1],)
    )
    return int(row[0])


async def enable_user(conn: AsyncConnection[Any], login: str, api_key_id: int) -> int | None:
    """Re-enable a disabled account under a new audit identity (the old one stays revoked:
    revocation is one-way) with its sign-in throttling cleared; its id, None if not disabled."""
    cur = await conn.execute(
        "UPDATE users SET disabled_at = NULL, api_key_id = %s, failed_attempts = 0, "
        "locked_until = NULL WHERE login = %s AND disabled_at IS NOT NULL RETURNING id",
        (api_key_id, login),
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def principal_key_id(conn: AsyncConnection[Any], api_key_id: int) -> str:
    cur = await conn.execute("SELECT key_id FROM api_keys WHERE id = %s", (api_key_id,))
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


async def insert_session(
    conn: AsyncConnection[Any], user_id: int, token_hash: bytes, lifetime_s: int
) -> int:
    cur = await conn.execute(
        "INSERT INTO web_sessions (token_hash, user_id, expires_at) "
        "VALUES (%s, %s, now() + make_interval(secs => %s)) RETURNING id",
        (token_hash, user_id, lifetime_s),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def active_session(
    conn: AsyncConnection[Any], token_hash: bytes, idle_s: int
) -> ActiveSession | None:
    """The session of ``token_hash`` if it is neither ended, expired, idle nor disabled."""
    cur = await conn.execute(
        "SELECT s.id, u.id, u.login, u.role::text, u.api_key_id, k.key_id, "
        "u.must_change_password, s.last_seen_at FROM web_sessions s "
        "JOIN users u ON u.id = s.user_id JOIN api_keys k ON k.id = u.api_key_id "
        "WHERE s.token_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now() "
        "AND s.last_seen_at > now() - make_interval(secs => %s) AND u.disabled_at IS NULL "
        "AND k.revoked_at IS NULL",
        (token_hash, idle_s),
    )
    row = await cur.fetchone()
    return None if row is None else ActiveSession(*row)


async def touch_session(conn: AsyncConnection[Any], session_id: int) -> None:
    await conn.execute("UPDATE web_sessions SET last_seen_at = now() WHERE id = %s", (session_id,))


async def end_session(conn: AsyncConnection[Any], session_id: int) -> bool:
    cur = await conn.execute(
        "UPDATE web_sessions SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL",
        (session_id,),
    )
    return cur.rowcount > 0


async def end_sessions_of(
    conn: AsyncConnection[Any], user_id: int, *, keep: int | None = None
) -> int:
    cur = await conn.execute(
        "UPDATE web_sessions SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL "
        "AND id IS DISTINCT FROM %s",
        (user_id, keep),
    )
    return cur.rowcount


async def list_sessions(conn: AsyncConnection[Any], idle_s: int) -> list[SessionRow]:
    """Sessions still valid, most recent activity first."""
    cur = await conn.execute(
        "SELECT s.id, u.login, u.role::text, s.created_at, s.last_seen_at, s.expires_at "
        "FROM web_sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.revoked_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL "
        "AND s.last_seen_at > now() - make_interval(secs => %s) "
        "ORDER BY s.last_seen_at DESC, s.id DESC",
        (idle_s,),
    )
    return [SessionRow(*row) for row in await cur.fetchall()]


async def purge_sessions(conn: AsyncConnection[Any], keep_days: int = 7) -> int:
    """Delete sessions ended or expired more than ``keep_days`` ago."""
    cur = await conn.execute(
        "DELETE FROM web_sessions WHERE expires_at < now() - make_interval(days => %s) "
        "OR revoked_at < now() - make_interval(days => %s)",
        (keep_days, keep_days),
    )
    return cur.rowcount
