"""Serving with several uvicorn workers, each with its own listening socket (SO_REUSEPORT).

``uvicorn --workers N`` binds one socket in the parent and hands that same socket to every
worker: they share one accept queue, and whichever worker wakes first accepts every pending
connection. A client that opens its keep-alive connections together (a load balancer, a
connection pool) then lands entirely on one worker while the others idle: measured here, 32
connections all on one of two workers, half the machine unused.

On Linux, :func:`serve` gives each worker its own socket bound to the same address with
``SO_REUSEPORT``; the kernel spreads new connections over the workers' accept queues. The
parent keeps a bound socket that never listens (so it receives no connection), only to hold
the address and to be handed to the workers: unpickled in a worker (uvicorn's workers are
spawned processes), it becomes a fresh socket of that worker. uvicorn's supervisor is used
unchanged (health checks, restart of a dead worker, graceful shutdown). Elsewhere, or with
one worker, this is plain ``uvicorn.run``.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

import uvicorn

log = logging.getLogger("uvicorn.error")


def reuse_port_supported() -> bool:
    """Linux balances connections over SO_REUSEPORT listeners; other systems do not."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_reuse_port(family: int, address: tuple[str, int]) -> ReusePortSocket:
    """A TCP socket bound to ``address`` with SO_REUSEPORT, not listening yet."""
    sock = ReusePortSocket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ReusePortSocket(socket.socket):
    """A socket that, sent to another process, arrives as a new socket on the same address.

    multiprocessing would otherwise duplicate the file descriptor (the same socket, the same
    accept queue); pickling by address gives each worker a listener of its own.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (bind_reuse_port, (self.family, self.getsockname()[:2]))


def serve(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """Run the ASGI ``app`` (an import string) with ``workers`` processes until stopped."""
    if workers <= 1 or not reuse_port_supported():
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        placeholder = bind_reuse_port(family, (host, port))
    except OSError as exc:
        log.error("%s", exc)
        raise SystemExit(3) from exc  # uvicorn's STARTUP_FAILURE
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    log.info(
        "Uvicorn running on http://%s:%d (Press CTRL+C to quit)",
        shown,
        placeholder.getsockname()[1],
    )
    try:
        Multiprocess(config, sockets=[placeholder]).run()
    except KeyboardInterrupt:  # pragma: no cover - the supervisor handles SIGINT itself
        pass
    finally:
        placeholder.close()
