"""Bounded closed-loop load generator (asyncio, raw HTTP/1.1), run by bench/run.py.

``concurrency`` tasks each hold one keep-alive connection; each sends the next request as soon
as its previous one is answered, until ``requests`` have been sent or ``max_seconds`` have
passed. Every request carries ``X-Request-ID: <prefix>-<n>`` so that the run can count what
the service recorded. Prints one JSON object on stdout.

Why not httpx: the generator shares the 2 cores with the service and PostgreSQL, so every
millisecond of its CPU is taken from what it measures. httpx spent about 0.75 ms of CPU per
request (its pool, header models, response objects); this client writes pre-built request
bytes on an asyncio stream (uvloop when installed) and reads the status line and the body by
its Content-Length, about a tenth of that, as `wrk` would, while staying a Python script
with no system package to install. It speaks only what it needs of HTTP/1.1: keep-alive,
Content-Length or chunked bodies, and counts any other status or a broken connection as an
error of its kind.
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
from urllib.parse import urlsplit

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


class HTTPError(Exception):
    """A response the generator could not read, or a connection that broke."""


class Connection:
    """One keep-alive HTTP/1.1 connection: send a request, read its status and body."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def request(self, data: bytes) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._exchange(data), self.timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            self.close()
            raise HTTPError(type(e).__name__) from e
        except TimeoutError as e:
            self.close()
            raise HTTPError("Timeout") from e

    async def _exchange(self, data: bytes) -> tuple[int, bytes]:
        reader, writer = await self._open()
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = -1
        chunked, keep_alive = False, True
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                keep_alive = False
        if chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        elif length >= 0:
            body = await reader.readexactly(length)
        else:
            body = await reader.read()
            keep_alive = False
        if not keep_alive:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def build_request(url: str, path: str, key: str, body: bytes, request_id: str) -> bytes:
    """The bytes of one POST request (the body already serialised)."""
    parts = urlsplit(url)
    return (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {parts.netloc}\r\n"
        f"Authorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Request-ID: {request_id}\r\n"
        "\r\n"
    ).encode() + body


async def run(args: argparse.Namespace) -> dict[str, Any]:
    payloads = orjson.loads(Path(args.payloads).read_bytes())
    bodies = [orjson.dumps(p) for p in payloads]
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = 0
    deadline = 0.0
    connections = [Connection(host, port, args.timeout) for _ in range(args.concurrency)]

    async def send(conn: Connection, n: int, prefix: str) -> tuple[bool, float, str]:
        data = build_request(
            args.url, args.path, args.key, bodies[n % len(bodies)], f"{prefix}-{n}"
        )
        started = time.perf_counter()
        try:
            status, _ = await conn.request(data)
        except HTTPError as exc:
            return False, time.perf_counter() - started, str(exc)
        elapsed = time.perf_counter() - started
        if status != args.expect:
            return False, elapsed, f"HTTP {status}"
        return True, elapsed, ""

    async def warm(conn: Connection, first: int) -> None:
        # Open the connection and touch every code path, outside the measurement.
        for n in range(first, args.warmup, args.concurrency):
            await send(conn, n, f"{args.prefix}w")

    async def worker(conn: Connection) -> None:
        nonlocal counter
        while counter < args.requests and time.perf_counter() < deadline:
            n = counter
            counter += 1
            ok, elapsed, kind = await send(conn, n, args.prefix)
            if ok:
                latencies.append(elapsed)
            else:
                errors[kind] = errors.get(kind, 0) + 1

    try:
        await asyncio.gather(*(warm(c, i) for i, c in enumerate(connections)))
        groups = {name: [int(x) for x in pids.split(",") if x] for name, pids in args.watch}
        snap_before = cpu_snapshot(groups)
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        deadline = started + args.max_seconds
        await asyncio.gather(*(worker(c) for c in connections))
        wall = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        snap_after = cpu_snapshot(groups)
    finally:
        for conn in connections:
            conn.close()

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
    try:
        import uvloop  # installed with uvicorn[standard]; the cheaper event loop
    except ImportError:  # pragma: no cover - plain asyncio works too
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
