"""Bounded closed-loop load generator (asyncio + httpx), run as its own process by bench/run.py.

``concurrency`` tasks share one HTTP/1.1 connection pool; each sends the next request as soon
as its previous one is answered, until ``requests`` have been sent or ``max_seconds`` have
passed. Every request carries ``X-Request-ID: <prefix>-<n>`` so that the run can count what
the service recorded. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil


def cpu_snapshot(roots: dict[str, list[int]]) -> dict[str, float]:
    """CPU-seconds used so far by each group (its root processes and all their descendants,
    enumerated now, plus the children they have already reaped, so that a PostgreSQL backend
    that exits during the run still counts), by each live process (``group/pid``), and by
    the whole machine (busy, total)."""
    snap: dict[str, float] = {}
    for name, pids in roots.items():
        total = 0.0
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(pid)
                for p in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        t = p.cpu_times()
                        total += t.user + t.system + t.children_user + t.children_system
                        snap[f"{name}/{p.pid}"] = t.user + t.system
        snap[name] = total
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    busy = sum(t) - idle - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    snap["machine_busy"] = busy
    snap["machine_total"] = busy + idle
    return snap


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    payloads = orjson.loads(Path(args.payloads).read_bytes())
    bodies = [orjson.dumps(p) for p in payloads]
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(args.timeout)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = 0
    deadline = 0.0

    # One client (one keep-alive connection) per task: httpx's shared pool scans all its
    # connections on every request, which made the generator itself the bottleneck at 32.
    clients = [
        httpx.AsyncClient(base_url=args.url, limits=limits, timeout=timeout)
        for _ in range(args.concurrency)
    ]

    async def send(client: httpx.AsyncClient, n: int, prefix: str) -> tuple[bool, float, str]:
        body = bodies[n % len(bodies)]
        started = time.perf_counter()
        try:
            response = await client.post(
                args.path, content=body, headers={**headers, "X-Request-ID": f"{prefix}-{n}"}
            )
        except httpx.HTTPError as exc:
            return False, time.perf_counter() - started, type(exc).__name__
        elapsed = time.perf_counter() - started
        if response.status_code != args.expect:
            return False, elapsed, f"HTTP {response.status_code}"
        return True, elapsed, ""

    async def warm(client: httpx.AsyncClient, first: int) -> None:
        # Open the connection and touch every code path, outside the measurement.
        for n in range(first, args.warmup, args.concurrency):
            await send(client, n, f"{args.prefix}w")

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal counter
        while counter < args.requests and time.perf_counter() < deadline:
            n = counter
            counter += 1
            ok, elapsed, kind = await send(client, n, args.prefix)
            if ok:
                latencies.append(elapsed)
            else:
                errors[kind] = errors.get(kind, 0) + 1

    try:
        await asyncio.gather(*(warm(c, i) for i, c in enumerate(clients)))
        groups = {name: [int(x) for x in pids.split(",") if x] for name, pids in args.watch}
        snap_before = cpu_snapshot(groups)
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        deadline = started + args.max_seconds
        await asyncio.gather(*(worker(c) for c in clients))
        wall = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        snap_after = cpu_snapshot(groups)
    finally:
        for client in clients:
            await client.aclose()

    ordered = sorted(latencies)
    ok = len(ordered)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "concurrency": args.concurrency,
        "sent": counter,
        "ok": ok,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "wall_s": wall,
        "throughput_rps": ok / wall if wall > 0 else 0.0,
        "latency_ms": {
            "p50": percentile(ordered, 50) * 1000,
            "p95": percentile(ordered, 95) * 1000,
            "p99": percentile(ordered, 99) * 1000,
            "max": ordered[-1] * 1000 if ordered else float("nan"),
            "mean": sum(ordered) / ok * 1000 if ok else float("nan"),
        },
        "client_cpu_s": cpu,
        "cpu_s": {
            name: snap_after[name] - snap_before[name] for name in snap_before if name in snap_after
        },
        "stopped_by_deadline": counter < args.requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", default="/v1/predictions")
    parser.add_argument("--key", required=True)
    parser.add_argument("--payloads", required=True, help="JSON file: a list of request bodies")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--expect", type=int, default=201)
    parser.add_argument("--prefix", required=True)
    parser.add_argument(
        "--watch",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "PIDS"),
        help="processes (and their descendants) whose CPU time to report",
    )
    args = parser.parse_args()
    result = asyncio.run(run(args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
