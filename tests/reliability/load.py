"""A bounded load generator: N prediction requests from C concurrent clients, all recorded.

Each request has its own X-Request-ID and a slightly different employee, so that every
response can be matched to the rows it should have written. Every other request carries an
Idempotency-Key: those are written in their own transaction, the others go through the
group-commit writer (``attrition.db.writer``), so that a run exercises both write paths.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from attrition.api.schemas import EXAMPLE_EMPLOYEE


def employee(index: int) -> dict[str, Any]:
    """A valid, coherent employee that differs from its neighbours (age 22 to 60, income)."""
    return {
        **EXAMPLE_EMPLOYEE,
        "age": 22 + index % 39,
        "revenu_mensuel": 1000 + (index * 37) % 19000,
    }


@dataclass
class Outcome:
    """One request and what came back (``status`` None: no response, ``error`` says why)."""

    index: int
    request_id: str
    idempotency_key: str | None
    body: dict[str, Any]
    status: int | None = None
    response: dict[str, Any] | None = None
    replayed: bool = False
    error: str | None = None
    seconds: float = 0.0
    finished_at: float = 0.0


def plan(prefix: str, total: int) -> list[Outcome]:
    return [
        Outcome(
            index=i,
            request_id=f"{prefix}-{i:05d}",
            idempotency_key=f"{prefix}-cle-{i:05d}" if i % 2 == 0 else None,
            body=employee(i),
        )
        for i in range(total)
    ]


async def send(client: httpx.AsyncClient, key: str, outcome: Outcome) -> None:
    headers = {"Authorization": f"Bearer {key}", "X-Request-ID": outcome.request_id}
    if outcome.idempotency_key is not None:
        headers["Idempotency-Key"] = outcome.idempotency_key
    started = time.perf_counter()
    try:
        r = await client.post("/v1/predictions", json=outcome.body, headers=headers)
    except httpx.HTTPError as exc:
        outcome.status, outcome.response = None, None
        outcome.error = f"{type(exc).__name__}: {exc}"[:120]
    else:
        outcome.status = r.status_code
        outcome.response = r.json() if r.status_code == 201 else None
        outcome.replayed = r.headers.get("idempotent-replayed") == "true"
        outcome.error = None
    outcome.seconds = time.perf_counter() - started
    outcome.finished_at = time.monotonic()


async def run(
    base_url: str,
    key: str,
    outcomes: Sequence[Outcome],
    *,
    concurrency: int,
    deadline_s: float,
    stop: Callable[[], bool] = lambda: False,
) -> float:
    """Send every planned request (until ``stop()``), ``concurrency`` at a time; return seconds."""
    queue = iter(outcomes)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(30.0, connect=5.0)

    async def client_loop(client: httpx.AsyncClient) -> None:
        for outcome in queue:
            if stop():
                return
            await send(client, key, outcome)

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        await asyncio.wait_for(
            asyncio.gather(*(client_loop(client) for _ in range(concurrency))), deadline_s
        )
    return time.perf_counter() - started


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
