"""The pool's connection check: no round trip for a quiet connection, a real one otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path

import psycopg
import pytest

from attrition.db.engine import Database, libpq_conninfo
from attrition.db.pool import check_connection, open_pool


async def _traced_check(conn: psycopg.AsyncConnection[object]) -> str:
    """What libpq sent and received on ``conn`` while the pool's check ran on it."""
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.txt"
        fd = os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        conn.pgconn.trace(fd)
        try:
            await check_connection(conn)
        finally:
            conn.pgconn.untrace()
            os.close(fd)
        return trace.read_text()


def test_quiet_idle_connection_is_lent_without_a_round_trip(database: Database) -> None:
    async def main() -> str:
        async with await psycopg.AsyncConnection.connect(
            libpq_conninfo(database.app_url), autocommit=True
        ) as conn:
            await conn.execute("SELECT 1")
            return await _traced_check(conn)

    # libpq traces every message sent or received: a quiet connection exchanged none.
    assert asyncio.run(main()) == ""


def test_connection_with_something_to_read_gets_a_real_check(database: Database) -> None:
    """A notification waiting on the socket: the check makes a round trip, and passes."""

    async def main() -> str:
        info = libpq_conninfo(database.app_url)
        async with (
            await psycopg.AsyncConnection.connect(info, autocommit=True) as conn,
            await psycopg.AsyncConnection.connect(info, autocommit=True) as other,
        ):
            await conn.execute("LISTEN attrition_pool_check")
            await other.execute("NOTIFY attrition_pool_check")
            await asyncio.sleep(0.2)
            return await _traced_check(conn)

    assert "Query" in asyncio.run(main())


def test_terminated_backend_fails_the_check(database: Database) -> None:
    """A connection whose server process is gone (a restart) is refused, not lent."""

    async def main() -> None:
        info = libpq_conninfo(database.app_url)
        conn = await psycopg.AsyncConnection.connect(info)
        try:
            cur = await conn.execute("SELECT pg_backend_pid()")
            row = await cur.fetchone()
            assert row is not None
            await conn.rollback()
            async with await psycopg.AsyncConnection.connect(info, autocommit=True) as admin:
                await admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
            await asyncio.sleep(0.3)
            with pytest.raises(psycopg.OperationalError):
                await check_connection(conn)
        finally:
            await conn.close()

    asyncio.run(main())


def test_connection_inside_a_transaction_is_refused(database: Database) -> None:
    """The pool lends only idle connections: one left in a transaction is not reusable."""

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(libpq_conninfo(database.app_url)) as conn:
            await conn.execute("SELECT 1")  # a transaction left open
            with pytest.raises(psycopg.OperationalError):
                await check_connection(conn)

    asyncio.run(main())


def test_a_pool_whose_connections_were_all_terminated_lends_a_new_one_at_once(
    database: Database,
) -> None:
    """After a restart every idle connection is dead: the next request still gets one.

    psycopg_pool waits (1 s, then 2 s...) after each connection that fails its check, so
    with several dead connections a request ran out of its pool timeout and got a 503.
    """

    async def main() -> None:
        info = libpq_conninfo(database.app_url)
        pool = open_pool(info, min_size=4, max_size=4, timeout=0.5, name="test-dead")
        await pool.open(wait=True)
        try:
            pids = set()
            async with contextlib.AsyncExitStack() as stack:
                for _ in range(4):  # all four lent at once: four backends
                    conn = await stack.enter_async_context(pool.connection())
                    pids.add(conn.info.backend_pid)
            async with await psycopg.AsyncConnection.connect(info, autocommit=True) as admin:
                await admin.execute(
                    "SELECT pg_terminate_backend(p) FROM unnest(%s::int[]) p", (list(pids),)
                )
            await asyncio.sleep(0.3)
            for _ in range(3):
                async with pool.connection() as conn:  # within the 0.5 s timeout
                    cur = await conn.execute("SELECT pg_backend_pid()")
                    row = await cur.fetchone()
                    assert row is not None and row[0] not in pids
        finally:
            await pool.close()

    asyncio.run(main())
