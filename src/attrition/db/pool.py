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

import select
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
