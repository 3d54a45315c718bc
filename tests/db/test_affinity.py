"""The backend of a worker's small groups runs on the worker's CPU, and only a local one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from attrition.db.affinity import child_of, local_backend
from attrition.db.engine import Database, libpq_conninfo
from attrition.db.writer import GroupCommitWriter
from tests.db.writing import record, with_writer

#: The writer's statement for a lone record (``writer_sql.INSERT_ONE``): how its backend is
#: found from outside, without reaching into the writer.
_LONE = "WITH r AS MATERIALIZED%"

needs_two_cpus = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs CPU affinity and at least two CPUs",
)


@contextlib.contextmanager
def pinned_to(cpu: int) -> Iterator[None]:
    """This thread (the event loop's, in ``with_writer``) on ``cpu`` only, as a pinned worker."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


async def writers_backend(database: Database) -> int:
    """The pid of the backend whose last statement was the writer's lone insert."""
    async with await psycopg.AsyncConnection.connect(
        libpq_conninfo(database.app_url), autocommit=True
    ) as conn:
        cur = await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE usename = current_user "
            "AND pid <> pg_backend_pid() AND query LIKE %s AND state = 'idle' "
            "ORDER BY state_change DESC LIMIT 1",
            (_LONE,),
        )
        row = await cur.fetchone()
    assert row is not None, "the writer's backend was not found"
    return int(row[0])


def local_or_skip() -> None:
    """Skip when the tests run against an external server (as ``settings`` decides)."""
    if os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL"):
        pytest.skip("the test database is an external server, maybe of another machine")


@needs_two_cpus
def test_the_small_groups_backend_runs_on_its_pinned_workers_cpu(
    database: Database, model_id: int
) -> None:
    """A worker kept on one CPU (ADR 26) has its writer's backend kept there too: left free,
    it was woken on the other worker's CPU while its own went idle (ADR 31)."""
    local_or_skip()
    cpu = max(os.sched_getaffinity(0))

    async def work(writer: GroupCommitWriter, _pool: Any) -> tuple[set[int], set[int]]:
        with pinned_to(cpu):
            await writer.write([record(f"aff-{uuid.uuid4().hex[:8]}", model_id)])
            pid = await writers_backend(database)
            during = os.sched_getaffinity(pid)
            await writer.close()  # the kept connection goes back to the pool
            return during, os.sched_getaffinity(pid)

    all_cpus = os.sched_getaffinity(0)
    during, after = with_writer(database, work)
    assert during == {cpu}
    assert after == all_cpus  # given back its CPUs with the connection


@needs_two_cpus
def test_a_free_worker_leaves_the_backend_free(database: Database, model_id: int) -> None:
    """Workers not pinned (``ATTRITION_PIN_WORKERS=false``, one worker): nothing is narrowed."""
    local_or_skip()
    all_cpus = os.sched_getaffinity(0)

    async def work(writer: GroupCommitWriter, _pool: Any) -> set[int]:
        await writer.write([record(f"aff-free-{uuid.uuid4().hex[:8]}", model_id)])
        return os.sched_getaffinity(await writers_backend(database))

    assert with_writer(database, work) == all_cpus


@dataclass(frozen=True)
class Info:
    """The three fields read of ``psycopg.AsyncConnection.info``."""

    host: str
    port: int
    backend_pid: int


def test_a_tcp_backend_is_never_taken_for_a_local_process() -> None:
    """Over TCP the pid names a process of the server's machine: this one is never moved."""
    assert local_backend(Info("127.0.0.1", 5432, os.getpid())) is None
    assert local_backend(Info("db.example.org", 5432, os.getpid())) is None


def test_a_pid_that_is_not_a_child_of_the_sockets_postmaster_is_refused(tmp_path: Path) -> None:
    """The socket's lock file names the postmaster: a pid that is not its child is refused,
    and so is a missing or unreadable lock file."""
    (tmp_path / ".s.PGSQL.5432.lock").write_text(f"{os.getppid()}\n{tmp_path}\n")
    # This process is a child of the "postmaster" named, but is not a postgres process.
    assert local_backend(Info(str(tmp_path), 5432, os.getpid())) is None
    (tmp_path / ".s.PGSQL.5432.lock").write_text("1\n")
    assert local_backend(Info(str(tmp_path), 5432, os.getpid())) is None
    assert local_backend(Info(str(tmp_path), 5433, os.getpid())) is None  # no lock file
    (tmp_path / ".s.PGSQL.5432.lock").write_text("garbage\n")
    assert local_backend(Info(str(tmp_path), 5432, os.getpid())) is None


def test_the_writers_backend_is_proved_local(database: Database) -> None:
    """The embedded server of the tests: its backends are children of the postmaster the
    socket's lock file names."""
    local_or_skip()

    async def pids() -> tuple[int | None, int]:
        async with await psycopg.AsyncConnection.connect(libpq_conninfo(database.app_url)) as conn:
            return local_backend(conn.info), conn.info.backend_pid

    proved, pid = asyncio.run(pids())
    assert proved == pid


def test_a_backend_that_ended_is_no_longer_taken_for_one(database: Database) -> None:
    """Before each change of CPUs the pid is checked again: a backend that ended may have left
    its pid to an unrelated process, which must never be moved."""
    local_or_skip()

    async def main() -> tuple[bool, bool, bool]:
        info = libpq_conninfo(database.app_url)
        async with await psycopg.AsyncConnection.connect(info, autocommit=True) as doomed:
            pid = doomed.info.backend_pid
            lock = Path(doomed.info.host, f".s.PGSQL.{doomed.info.port}.lock").read_text()
            postmaster = int(lock.split("\n", 1)[0])
            alive = child_of(pid, postmaster)
            async with await psycopg.AsyncConnection.connect(info, autocommit=True) as other:
                await other.execute("SELECT pg_terminate_backend(%s)", (pid,))
            for _ in range(100):  # the postmaster reaps it
                if not Path(f"/proc/{pid}").exists():
                    break
                await asyncio.sleep(0.02)
            ended = child_of(pid, postmaster)
        return alive, ended, child_of(os.getpid(), os.getppid())

    assert asyncio.run(main()) == (True, False, False)
