"""CPU per prediction of the application itself, in one process: the A/B tool of the hot path.

`make bench` measures the whole chain (uvicorn, the app, PostgreSQL, the load generator) on
a machine it shares with them; on a busy machine its figures move by tens of percent from one
run to the next. This script calls the ASGI application directly (no HTTP server, no socket:
the same middlewares, routes, authentication, quotas, model, writer and PostgreSQL commit),
sends ``--requests`` ``POST /v1/predictions`` from ``--concurrency`` tasks, and prints the
process CPU time per request. To compare two versions of the code, run it for each, several
times, alternating, and compare the minima (the run least disturbed by other processes)::

    git worktree add /tmp/avant <commit>
    PYTHONPATH=/tmp/avant/src .venv/bin/python bench/inprocess.py --requests 3000
    .venv/bin/python bench/inprocess.py --requests 3000

The database (embedded PostgreSQL, data, model, `predicteur` key) is prepared once in
``--workdir`` and reused. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent


def scope(
    key: str, body: bytes, path: str = "/v1/predictions", request_id: str | None = None
) -> dict[str, Any]:
    """The ASGI scope of one ``POST path`` with the key and a JSON body (as a client sends)."""
    extra = [(b"x-request-id", request_id.encode())] if request_id else []
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ],
    }


def body_once(body: bytes) -> Any:
    """An ASGI ``receive`` that gives ``body`` in one message (the app never reads twice)."""
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # pragma: no cover - the app never reads twice
        return {"type": "http.disconnect"}

    return receive


async def measure(app: Any, key: str, bodies: list[bytes], requests: int, concurrency: int) -> dict:
    statuses: dict[int, int] = {}

    async def one(i: int) -> None:
        body = bodies[i % len(bodies)]
        receive = body_once(body)

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope(key, body), receive, send)

    async def worker(start: int) -> None:
        for i in range(start, requests, concurrency):
            await one(i)

    await asyncio.gather(*(worker(s) for s in range(concurrency)))  # warm-up
    statuses.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(s) for s in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "requests": requests,
        "concurrency": concurrency,
        "cpu_us_per_request": round(1e6 * cpu / requests, 1),
        "requests_per_s": round(requests / wall, 1),
        "statuses": statuses,
    }


def prepared(workdir: Path) -> tuple[Any, str, list[Any]]:
    """Settings, the `predicteur` key and the bodies of a database prepared once in ``workdir``.

    The environment of an in-process run (embedded PostgreSQL in ``workdir``, limits out of
    the way), and the same preparation as `make bench` the first time. Shared with
    ``bench/batch_inprocess.py``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        APP_ENV="dev",
        ATTRITION_PGDATA=str(workdir / "pgdata"),
        ATTRITION_API__RATE_LIMIT_PER_MINUTE="100000000",
        ATTRITION_API__PREDICTIONS_PER_MINUTE="100000000",
        ATTRITION_API__PREDICTIONS_PER_DAY="100000000",
    )
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(BENCH))
    import run  # bench/run.py: the same preparation as `make bench`

    os.environ.setdefault("ATTRITION_DATA_DIR", str(run.data_dir()))
    from attrition.config import get_settings

    settings = get_settings()
    state = workdir / "state.json"
    if not state.is_file():
        db, _version, key, _payloads = run.prepare(settings, workdir)
        db.stop()
        state.write_text(json.dumps({"key": key}))
    key = json.loads(state.read_text())["key"]
    payloads = orjson.loads((workdir / "payloads.json").read_bytes())
    # Log lines are formatted and written as by the service, to a sink.
    logging.basicConfig(stream=open(os.devnull, "w"), level=settings.log_level.upper())  # noqa: SIM115
    from attrition.logs import lighten_records

    lighten_records()  # as configure_logging does in the service
    return settings, key, payloads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/attrition-inprocess"))
    args = parser.parse_args()
    settings, key, payloads = prepared(args.workdir)
    bodies = [orjson.dumps(p) for p in payloads]
    from attrition.api.app import create_app

    async def session() -> dict:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            return await measure(app, key, bodies, args.requests, args.concurrency)

    print(json.dumps(asyncio.run(session())))


if __name__ == "__main__":
    main()
