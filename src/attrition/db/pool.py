"""The check a connection pool runs before it lends a connection: a round trip only if needed.

``AsyncConnectionPool.check_connection`` sends an empty query each time a connection is
lent, so that the connections a database restart killed are dropped instead of failing the
next requests. On the prediction path that is one more round trip per write (measured: 9 %
of an API process's CPU and a round trip of latency at concurrency 1, see bench/).

A connection the server closed, or that has anything at all waiting to be read (the
server's goodbye after a restart or ``pg_terminate_backend``, a notice, a notification),
has a readable socket; a quiet, idle connection does not. :func:`check_connection` looks
at the socket without waiting and makes the real check only when it is readable (a
connection left in a transaction is refused outright): a dead connection is still never
lent, a quiet one costs no round trip. A server that vanishes without closing its sockets
is not seen by either check until a query times out.
"""

from __future__ import annotations

import asyncio
import select
import time
from typing import Any

import psycopg
from psycopg import pq
from psycopg_pool import AsyncConnectionPool


async def check_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """Raise if ``conn`` must not be lent; a round trip only when its socket has news."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    if conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        # The pool only lends connections it has rolled back: anything else is not reusable.
        raise psycopg.OperationalError("the connection is not idle")
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    if readable:
        await AsyncConnectionPool.check_connection(conn)


class CheckedPool(AsyncConnectionPool[Any]):
    """A pool that checks each connection it lends with :func:`check_connection`, at once.

    psycopg_pool's own ``check`` argument backs off after every connection that fails its
    check (about 1 s, then 2 s...), so that a broken check does not spin. After a database
    restart every idle connection fails it: a request met one dead connection after another
    and, with a pool timeout of 2 s, got a 503 although the server was back. Here a dead
    connection is given back at once (the pool discards it and opens another) and the next
    is tried, until the request's own timeout; only a check that fails on fresh connections
    too (something else is wrong) waits between attempts.
    """

    async def getconn(self, timeout: float | None = None) -> Any:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        failures = 0
        while True:
            conn = await super().getconn(max(deadline - time.monotonic(), 0.0))
            try:
                await check_connection(conn)
            except psycopg.Error:
                await self.putconn(conn)  # discarded if broken, rolled back otherwise
                failures += 1
                if failures > (self.max_size or 1):  # not just the dead ones of a restart
                    await asyncio.sleep(min(0.05 * failures, 0.5))
                continue
            except BaseException:
                await self.putconn(conn)
                raise
            return conn


def open_pool(conninfo: str, **options: Any) -> CheckedPool:
    """A :class:`CheckedPool` for ``conninfo``, closed (``await pool.open()``)."""
    return CheckedPool(conninfo, open=False, **options)
