"""Time of one batch of 1,000 through the application itself, in one process: the batch A/B tool.

The batch counterpart of ``bench/inprocess.py``: calls the ASGI application directly (no HTTP
server, no socket; the same middlewares, route, authentication, quotas, validation, model,
explanation, record MACs, writer and durable PostgreSQL commit, and the response rendering)
with ``POST /v1/predictions/batch`` bodies of ``--size`` employees, one after the other, and
prints the wall time and the process CPU time of each batch (minimum and median), and the
CPU time of the PostgreSQL server per batch (mean). On a shared machine the wall time follows
the load; the two CPU times much less. To compare two versions of the code, run it for each,
several times, alternating, and compare the minima::

    git worktree add /tmp/avant <commit>
    PYTHONPATH=/tmp/avant/src .venv/bin/python bench/batch_inprocess.py
    .venv/bin/python bench/batch_inprocess.py

``--write copy`` writes the audit trail of a lone request with
:func:`attrition.db.bulk.copy_predictions` in place of the JSON statement, in one transaction
with the take of its key's daily quota (:func:`attrition.db.usage.take`), to measure what
that change would bring (:func:`use_copy`; the service itself does not do this yet).
``--profile FILE`` writes a cProfile of the timed batches (``python -m pstats FILE``). The
database is prepared once in ``--workdir`` (as ``bench/inprocess.py`` does) and reused. Only
127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from inprocess import body_once, prepared, scope  # noqa: E402 - bench/inprocess.py, beside this script


async def post(app: Any, key: str, body: bytes, request_id: str) -> tuple[int, bytes]:
    """One request; its status and response body."""
    status = 0
    chunks: list[bytes] = []
    receive = body_once(body)

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope(key, body, "/v1/predictions/batch", request_id), receive, send)
    return status, b"".join(chunks)


def database_cpu(pgdata: Path) -> float:
    """CPU seconds used so far by the PostgreSQL server of ``pgdata`` (all its processes)."""
    import psutil

    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    total = 0.0
    server = psutil.Process(pid)
    for process in [server, *server.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


async def measure(
    app: Any,
    key: str,
    body: bytes,
    repeats: int,
    profiler: cProfile.Profile | None,
    pgdata: Path,
) -> dict[str, Any]:
    run = f"batch-inprocess-{time.time_ns()}"
    status, _ = await post(app, key, body, f"{run}-warm")  # warm-up
    if status != 201:
        raise RuntimeError(f"batch refused: {status}")
    walls, cpus = [], []
    database = database_cpu(pgdata)
    for i in range(repeats):
        if profiler is not None:
            profiler.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        status, _ = await post(app, key, body, f"{run}-{i}")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
        if status != 201:
            raise RuntimeError(f"batch refused: {status}")
        walls.append(wall * 1000)
        cpus.append(cpu * 1000)
    # Clock ticks (10 ms) per process: the server's CPU is given per batch over all of them.
    database = database_cpu(pgdata) - database
    return {
        "repeats": repeats,
        "wall_ms_min": round(min(walls), 1),
        "wall_ms_median": round(statistics.median(walls), 1),
        "cpu_ms_min": round(min(cpus), 1),
        "cpu_ms_median": round(statistics.median(cpus), 1),
        "database_cpu_ms_mean": round(database * 1000 / repeats, 1),
    }


def use_copy() -> None:
    """Make the group-commit writer write a lone paying request with COPY (the experiment)."""
    from attrition.db import bulk, usage, writer

    paying = writer.GroupCommitWriter._write_paying

    async def write_paying(self: Any, group: list[Any]) -> list[Any]:
        if len(group) != 1 or group[0].take is None:
            return await paying(self, group)
        (item,) = group
        async with self.pool.connection() as conn, conn.transaction():
            try:
                used = await usage.take(conn, item.take)
            except usage.QuotaExceeded as exc:
                return [exc]
            return [writer.Committed(await bulk.copy_predictions(conn, item.records), used)]

    writer.GroupCommitWriter._write_paying = write_paying  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--write", choices=("json", "copy"), default="json")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/attrition-inprocess"))
    args = parser.parse_args()
    settings, key, payloads = prepared(args.workdir)
    from attrition.api.app import create_app

    if args.write == "copy":
        use_copy()
    # As `make bench`: the first employees of the dataset, as one body.
    body = orjson.dumps({"employes": [payloads[i % len(payloads)] for i in range(args.size)]})
    profiler = cProfile.Profile() if args.profile else None

    async def session() -> dict[str, Any]:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            return await measure(app, key, body, args.repeats, profiler, args.workdir / "pgdata")

    result = {"size": args.size, "write": args.write, **asyncio.run(session())}
    if profiler is not None:
        profiler.dump_stats(args.profile)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
