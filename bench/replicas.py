"""One replica against two on one PostgreSQL, in the same run; and the cost of a global quota.

Everything on 127.0.0.1, bounded. An embedded PostgreSQL is prepared as `make run` would
(data, a logistic model, a `predicteur` key), then held by this script and given to the
replicas as an external ``DATABASE_URL``:

1. the daily-quota upsert alone (:data:`attrition.db.usage.TAKE`; the service makes it inside
   the statement that records the predictions, so this is an upper bound of what it adds),
   timed sequentially: wall time, and CPU of this process and of PostgreSQL per statement;
2. ``POST /v1/predictions`` at ``--concurrency`` against ONE `attrition serve` (``--workers``
   processes), then the same total concurrency split over TWO replicas (each with
   ``--workers`` processes), one load generator per replica, at the same time.

The machine is shared and has 2 cores: two replicas share the cores of the first one, of
PostgreSQL and of the load generators. Only the ratios of one run mean something.
Prints one JSON object; ``--output`` writes it to a file too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # bench/run.py: prepare, Service, serve_argv, machine


def cpu_of(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def quota_statement(db: Any, pgdata: Path, count: int) -> dict[str, Any]:
    """The daily-quota upsert alone, ``count`` times in a row on one pooled connection."""
    from psycopg_pool import AsyncConnectionPool

    from attrition.db import usage

    async def go() -> dict[str, Any]:
        async with (
            AsyncConnectionPool(db.owner_conninfo, min_size=1, max_size=1) as pool,
            pool.connection() as conn,
        ):
            await conn.set_autocommit(True)
            for n in range(50):  # warm-up: connection, prepared statement
                await usage.take(conn, usage.Take("bench", "key:warm", 20_000 + n, 1, 10**9))
            postgres = bench.postgres_processes(pgdata)
            me = psutil.Process()
            pg0, me0, t0 = cpu_of(postgres), cpu_of([me]), time.perf_counter()
            for _ in range(count):
                await usage.take(conn, usage.Take("bench", "key:1", 20_000, 1, 10**9))
            wall = time.perf_counter() - t0
            await conn.set_autocommit(False)
            pg1, me1 = cpu_of(bench.postgres_processes(pgdata)), cpu_of([me])
        return {
            "statements": count,
            "wall_us": wall / count * 1e6,
            "client_cpu_us": (me1 - me0) / count * 1e6,
            "postgres_cpu_us": (pg1 - pg0) / count * 1e6,
        }

    return asyncio.run(go())


def load(url: str, key: str, payloads: Path, concurrency: int, requests: int, prefix: str) -> Any:
    argv = [
        sys.executable, str(bench.BENCH / "load.py"), "--url", url, "--key", key,
        "--payloads", str(payloads), "--concurrency", str(concurrency),
        "--requests", str(requests), "--warmup", str(max(50, 2 * concurrency)),
        "--max-seconds", "40", "--prefix", prefix,
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


def level(
    replicas: list[bench.Service], urls: list[str], key: str, workdir: Path, args: Any, tag: str
) -> dict[str, Any]:
    """The total concurrency split evenly over the replicas, one generator each, together."""
    share = max(1, args.concurrency // len(urls))
    requests = args.requests // len(urls)
    served = [p for r in replicas for p in r.all_processes()]
    postgres = bench.postgres_processes(workdir / "pgdata")
    before = cpu_of(served), cpu_of(postgres)
    started = time.perf_counter()
    runs = [
        load(u, key, workdir / "payloads.json", share, requests, f"{tag}-r{i}")
        for i, u in enumerate(urls)
    ]
    outs = [orjson.loads(r.communicate(timeout=120)[0].strip().splitlines()[-1]) for r in runs]
    wall = time.perf_counter() - started
    after = cpu_of(served), cpu_of(bench.postgres_processes(workdir / "pgdata"))
    ok = sum(o["ok"] for o in outs)
    return {
        "replicas": len(urls),
        "concurrency_total": share * len(urls),
        "ok": ok,
        "errors": sum(o["errors"] for o in outs),
        "throughput_rps": sum(o["throughput_rps"] for o in outs),
        "p50_ms": max(o["latency_ms"]["p50"] for o in outs),
        "p99_ms": max(o["latency_ms"]["p99"] for o in outs),
        "service_cpu_ms_per_req": (after[0] - before[0]) / ok * 1000 if ok else None,
        "postgres_cpu_ms_per_req": (after[1] - before[1]) / ok * 1000 if ok else None,
        "wall_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="processus par réplique")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrence totale")
    parser.add_argument("--requests", type=int, default=4000, help="requêtes au total")
    parser.add_argument("--statements", type=int, default=3000, help="upserts de quota mesurés")
    parser.add_argument("--counts", default="1,2", help="nombres de répliques, dans l'ordre")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="attr-replicas-", dir="/tmp"))
    pgdata = workdir / "pgdata"
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "ATTRITION_DATABASE_URL"}
    }
    env.update(
        APP_ENV="dev", ATTRITION_PGDATA=str(pgdata), ATTRITION_DATA_DIR=str(bench.data_dir())
    )
    env.update(bench.LIMITS_ENV)
    # Shared by every replica, as on several hosts: the app role's password, the audit key.
    env.update(
        ATTRITION_DB__APP_PASSWORD=secrets.token_urlsafe(16),
        ATTRITION_AUDIT_KEY="bench-audit-key-" + os.urandom(16).hex(),
        ATTRITION_AUDIT_CHECKPOINT_DIR=str(workdir / "audit"),
    )
    os.environ.update({k: env[k] for k in env if k.startswith(("ATTRITION_", "APP_"))})
    os.environ.pop("DATABASE_URL", None)
    from attrition.config import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    db, _version, key, _payloads = bench.prepare(settings, workdir)
    # The replicas see this PostgreSQL as an external one (DATABASE_URL), as on two hosts.
    env.pop("ATTRITION_PGDATA")
    env["DATABASE_URL"] = db.owner_url.render_as_string(hide_password=False)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": bench.git_short_sha(),
        "machine": bench.machine(),
        "config": vars(args) | {"output": str(args.output) if args.output else None},
    }
    try:
        if args.statements > 0:
            bench.say("Coût de l'instruction de quota journalier seule…")
            results["quota_statement"] = quota_statement(db, pgdata, args.statements)
            bench.say(f"  {results['quota_statement']}")
        runs = []
        for count in (int(c) for c in args.counts.split(",")):
            ports = [bench.free_port() for _ in range(count)]
            services = [
                bench.Service(f"r{i}", bench.serve_argv(p, args.workers), env | {
                    "ATTRITION_REPLICA": f"r{i}"}, workdir / f"r{i}-{count}.log")
                for i, p in enumerate(ports)
            ]  # fmt: skip
            try:
                urls = [f"http://127.0.0.1:{p}" for p in ports]
                for s, u in zip(services, urls, strict=True):
                    s.wait_ready(u)
                level(services, urls, key, workdir, args, f"warm{count}")  # warm-up pass
                runs.append(level(services, urls, key, workdir, args, f"run{count}"))
                bench.say(f"  {count} réplique(s) : {runs[-1]}")
            finally:
                for s in services:
                    s.stop()
        results["runs"] = runs
        if len(runs) == 2:
            one, two = runs
            results["ratio_2_over_1"] = {
                "throughput": two["throughput_rps"] / one["throughput_rps"],
                "service_cpu_per_req": two["service_cpu_ms_per_req"]
                / one["service_cpu_ms_per_req"],
            }
            bench.say(f"2 répliques / 1 : {results['ratio_2_over_1']}")
    finally:
        db.stop()
    text = orjson.dumps(results, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
