"""The backend that writes a worker's small groups, kept on that worker's CPU (ADR 31).

With several workers, ``attrition serve`` keeps each worker on a CPU of its own
(:class:`attrition.api.server.PinnedMultiprocess`, ADR 26). The small groups of a worker are
written by one PostgreSQL backend, on the connection its writer keeps
(:class:`attrition.db.writer.GroupCommitWriter`), and the worker's requests wait for it. Left
to the scheduler, that backend was woken on either CPU, often the other worker's, which then
had to give way while its own CPU went idle: at concurrency 32 both CPUs were idle together
6 to 8 % of the time. Kept on its worker's CPU, it runs while its worker waits for it (measured
in docs/decisions.md, ADR 31).

Only a backend that is provably a process of this machine is ever touched. The connection
must go through a Unix socket whose lock file (``.s.PGSQL.<port>.lock``, written by the
postmaster, its pid on the first line) names the postmaster, and the backend must be a
``postgres`` process whose parent is that postmaster. Over TCP, or for a server of another
machine or PID namespace, nothing is done: a backend's pid there names nothing here.

The backend is only narrowed to CPUs it may already use (an administrator's own placement of
PostgreSQL is kept), and given its former CPUs back when the writer returns the connection to
the pool: the pool's other uses (batches, sealing) stay free to run beside their worker.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class ConnectionInfo(Protocol):
    """What is read of a connection (``psycopg.AsyncConnection.info``)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def backend_pid(self) -> int: ...


class Connection(Protocol):
    """What is read of a connection: its ``info`` (``psycopg.AsyncConnection``)."""

    @property
    def info(self) -> ConnectionInfo: ...


def local_backend(info: ConnectionInfo) -> int | None:
    """The pid of the connection's backend if it is provably a process of this machine."""
    found = _local(info)
    return None if found is None else found[0]


def _local(info: ConnectionInfo) -> tuple[int, int] | None:
    """(backend, postmaster) if the backend is provably a process of this machine."""
    if not hasattr(os, "sched_setaffinity") or not info.host.startswith("/"):
        return None  # TCP (or a platform without CPU affinity): nothing to prove
    try:
        lock = Path(info.host, f".s.PGSQL.{info.port}.lock").read_text(encoding="ascii")
        postmaster = int(lock.split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    pid = info.backend_pid
    return (pid, postmaster) if child_of(pid, postmaster) else None


def child_of(pid: int, postmaster: int) -> bool:
    """Whether ``pid`` is, now, a ``postgres`` process whose parent is ``postmaster``.

    Checked again before each change of CPUs: a backend that ended may have left its pid to
    an unrelated process.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces, ")"
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return False
    return parent == postmaster and title.startswith(b"postgres")


@dataclass(slots=True)
class BackendPlacement:
    """Keeps the backend of one connection at a time on this thread's CPUs.

    ``follow`` is called before each use of the connection, and looks at most every
    ``every_s`` seconds (a few system calls); ``release`` gives the backend back its CPUs.
    """

    every_s: float = 1.0
    _conn: object | None = None
    _pid: int | None = None  # the followed backend, None if it is not provably local
    _parent: int = 0  # its postmaster
    _before: set[int] | None = None  # its CPUs before it was narrowed (None: untouched)
    _looked: float = -math.inf

    def follow(self, conn: Connection) -> None:
        """Narrow the backend of ``conn`` to this thread's CPUs, if they are among its own."""
        if conn is not self._conn:  # its info is read once per connection, not per group
            self.release()
            found = _local(conn.info)
            self._conn, self._looked = conn, -math.inf
            self._pid, self._parent = found if found is not None else (None, 0)
        now = time.monotonic()
        if self._pid is None or now - self._looked < self.every_s:
            return
        self._looked = now
        if not child_of(self._pid, self._parent):  # gone: its pid may be another's now
            self._pid, self._before = None, None
            return
        try:
            mine = os.sched_getaffinity(0)
            theirs = os.sched_getaffinity(self._pid)
            allowed = theirs if self._before is None else self._before
            wanted = mine if mine < allowed else allowed
            if wanted != theirs:
                os.sched_setaffinity(self._pid, wanted)
                self._before = allowed if wanted != allowed else None
        except OSError as exc:  # gone, or not ours to move: stop following this one
            log.debug("backend %s left where it is: %s", self._pid, exc)
            self._pid, self._before = None, None

    def release(self) -> None:
        """Give the followed backend back the CPUs it had; follow nothing."""
        if self._pid is not None and self._before is not None and child_of(self._pid, self._parent):
            with contextlib.suppress(OSError):  # a backend that ended meanwhile needs nothing
                os.sched_setaffinity(self._pid, self._before)
        self._conn, self._pid, self._before, self._looked = None, None, None, -math.inf
