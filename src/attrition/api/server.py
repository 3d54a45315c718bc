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

One generation at a time: SO_REUSEPORT would also let a second server join the port of a
running one, and workers orphaned by a killed supervisor would keep serving beside it (with
the old secret, the old model). So before anything else :func:`claim_generation` tests the
address with a socket *without* SO_REUSEPORT (any listener of another generation makes that
bind fail) and takes an exclusive ``flock`` beside the embedded database's data folder; each
worker asks the kernel to send it SIGTERM when its supervisor dies (:func:`follow_supervisor`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import IO, Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from attrition.errors import ConfigurationError

log = logging.getLogger("uvicorn.error")

#: Set by :func:`serve` for its workers: the supervisor's pid (see :func:`follow_supervisor`).
SUPERVISOR_PID_ENV = "ATTRITION_SUPERVISOR_PID"
#: ``prctl`` option that asks for a signal when the parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1


class AlreadyServingError(ConfigurationError):
    """Another generation of the server holds the address or the data folder."""


def check_address_free(host: str, port: int) -> None:
    """Refuse an address on which any socket is already bound or listening.

    The test socket has SO_REUSEADDR (a closed connection in TIME_WAIT does not count) but
    not SO_REUSEPORT: a listener of another server, even one with SO_REUSEPORT, makes the
    bind fail, where the workers' own SO_REUSEPORT sockets would have joined it silently.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise AlreadyServingError(
                    f"Impossible d'écouter sur {host}:{port} : {exc.strerror}."
                ) from exc
            raise AlreadyServingError(
                f"L'adresse {host}:{port} est déjà utilisée (un serveur attrition déjà lancé, "
                "ou un autre programme) : arrêtez-le avant d'en démarrer un nouveau, ou "
                "choisissez un autre port (--port)."
            ) from exc


def lock_path(pgdata: Path) -> Path:
    """The lock file of the generation serving the data folder ``pgdata``.

    Beside the folder, not in it: ``initdb`` wants an empty folder on the first start.
    """
    return pgdata.parent / f".{pgdata.name}.serve.lock"


def claim_data_folder(pgdata: Path) -> IO[bytes]:
    """Take the exclusive lock of ``pgdata`` for this process's lifetime, or refuse.

    The kernel releases a ``flock`` when its holder dies, even by SIGKILL: no stale lock to
    clean up. The file descriptor is not inherited by the workers (Python's default).
    """
    from attrition.db.embedded import ensure_writable_dir

    path = lock_path(pgdata)
    # A volume on /data owned by root (the container runs as uid 1000): a French message,
    # not a PermissionError traceback. Only the lock's folder is created here: a refused
    # second generation must leave no data folder behind.
    ensure_writable_dir(path.parent)
    try:
        handle = path.open("a+b")
    except OSError as exc:
        raise ConfigurationError(
            f"Impossible d'écrire le verrou {path} ({exc.strerror or type(exc).__name__}) : "
            f"donnez ce dossier à l'utilisateur du service (par ex. « chown -R 1000:1000 »)."
        ) from exc
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.seek(0)
        holder = handle.read(32).decode("ascii", "replace").strip() or "?"
        handle.close()
        raise AlreadyServingError(
            f"Un serveur attrition (processus {holder}) utilise déjà ce dossier de données "
            f"({pgdata}) : arrêtez-le avant d'en démarrer un nouveau."
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n".encode())
    handle.flush()
    return handle


def claim_generation(host: str, port: int, pgdata: Path | None) -> IO[bytes] | None:
    """Refuse to start beside a running generation; keep the returned handle open."""
    check_address_free(host, port)
    return claim_data_folder(pgdata) if pgdata is not None else None


def follow_supervisor() -> None:
    """In a worker: exit (SIGTERM, a graceful shutdown) as soon as the supervisor dies.

    Linux delivers the signal itself (``prctl(PR_SET_PDEATHSIG)``); elsewhere a thread
    checks the parent's pid every second, as gunicorn's workers do. A supervisor that died
    before the request was made is caught by the pid check that follows it.
    """
    expected = os.environ.get(SUPERVISOR_PID_ENV)
    if not expected or not expected.isdigit():
        return
    supervisor = int(expected)
    armed = False
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    if os.getppid() != supervisor:
        os.kill(os.getpid(), signal.SIGTERM)
        return
    if not armed:
        threading.Thread(target=_watch_parent, args=(supervisor,), daemon=True).start()


def _watch_parent(supervisor: int) -> None:  # pragma: no cover - non-Linux fallback
    stop = threading.Event()
    while not stop.wait(1.0):
        if os.getppid() != supervisor:
            os.kill(os.getpid(), signal.SIGTERM)
            return


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


class PinnedMultiprocess(Multiprocess):
    """uvicorn's supervisor, each worker kept on one CPU of those the server may use.

    Worker ``i`` runs on the ``i``-th allowed CPU (round robin when there are more workers
    than CPUs), and so does the worker that replaces it; nginx's ``worker_cpu_affinity auto``
    does the same. Left to the scheduler, the workers shared the two CPUs with PostgreSQL's
    backends and the clients, and were moved between them: at concurrency 32 the service
    recorded about 12 % fewer predictions per second (docs/decisions.md, ADR 26). Pinned from
    the supervisor, every thread of the worker, at each of its checks (every half second):
    the floor of the benchmark is served by the same code. Of PostgreSQL, only the backend
    that writes a worker's small groups follows its worker (:mod:`attrition.db.affinity`).
    """

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        self.cpus = sorted(os.sched_getaffinity(0))

    def init_processes(self) -> None:
        super().init_processes()
        self.pin()

    def restart_all(self) -> None:
        super().restart_all()
        self.pin()

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        self.pin()

    def pin(self) -> None:
        for index, process in enumerate(self.processes):
            if process.pid is not None:
                pin_process(process.pid, self.cpus[index % len(self.cpus)])


def pin_process(pid: int, cpu: int) -> None:
    """Keep every thread of process ``pid`` on ``cpu`` (those that differ; gone is fine)."""
    wanted = {cpu}
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                if os.sched_getaffinity(int(task)) != wanted:
                    os.sched_setaffinity(int(task), wanted)


def serve(
    app: str, *, host: str, port: int, workers: int, pin_workers: bool = True, **options: Any
) -> None:
    """Run the ASGI ``app`` (an import string) with ``workers`` processes until stopped.

    ``pin_workers``: each worker on a CPU of its own (:class:`PinnedMultiprocess`).
    """
    if workers <= 1 or not reuse_port_supported():
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    try:  # again: boot() may have taken minutes since `attrition serve` first checked
        check_address_free(host, port)
    except AlreadyServingError as exc:
        log.error("%s", exc.message)
        raise SystemExit(3) from exc  # uvicorn's STARTUP_FAILURE
    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())  # read by follow_supervisor()
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        placeholder = bind_reuse_port(family, (host, port))
    except OSError as exc:
        log.error("%s", exc)
        raise SystemExit(3) from exc  # uvicorn's STARTUP_FAILURE
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    log.info(
        "Serveur à l'écoute sur http://%s:%d (Ctrl+C pour arrêter)",
        shown,
        placeholder.getsockname()[1],
    )
    try:
        supervisor = PinnedMultiprocess if pin_workers else Multiprocess
        supervisor(config, sockets=[placeholder]).run()
    except KeyboardInterrupt:  # pragma: no cover - the supervisor handles SIGINT itself
        pass
    finally:
        placeholder.close()
        os.environ.pop(SUPERVISOR_PID_ENV, None)
