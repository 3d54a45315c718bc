"""Counts of one event-loop turn, written to prometheus_client's values once, at its end.

Every ``inc`` or ``observe`` of prometheus_client takes a lock and, in its multiprocess
mode (``attrition serve --workers N``), checks the process id and writes the new value to
the worker's memory-mapped file. A prediction made six of them (request count, latency sum
and bucket, prediction count, probability sum and bucket): about a twentieth of a worker's
CPU per prediction under load (docs/performance.md). Here a request only adds to plain
dictionaries; the first addition of a turn asks the event loop to write them (``call_soon``:
after the callbacks already queued, that is once the turn's other requests are answered).
Under load one write then carries the counts of every request of the turn; a lone request
is written at the end of its own turn, microseconds later, before any other request (a
scrape) can run. :meth:`Tally.flush` writes at once (a scrape's rendering calls it).

Histograms are added to as ``Histogram.observe`` does (the sum, and the first bucket whose
upper bound holds the value), through the child's own values (``_sum``, ``_buckets``,
``_upper_bounds``): prometheus_client is pinned, and a test compares the exposition with
the one its ``observe`` gives. Outside a running event loop (a thread, a script) values are
written at once, as before.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
from typing import Any


class Tally:
    """Pending additions to counters and histograms (prometheus_client children)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Any, float] = {}
        #: histogram child -> [sum, count per bucket]
        self._observed: dict[Any, list[Any]] = {}
        #: The loop asked to write at the end of its turn (None: nothing pending).
        self._loop: asyncio.AbstractEventLoop | None = None

    def inc(self, child: Any, amount: float = 1.0) -> None:
        """``child.inc(amount)`` at the end of the turn."""
        with self._lock:
            self._counts[child] = self._counts.get(child, 0.0) + amount
        self._schedule()

    def observe(self, child: Any, value: float) -> None:
        """``child.observe(value)`` at the end of the turn."""
        with self._lock:
            pending = self._observed.get(child)
            if pending is None:
                pending = self._observed[child] = [0.0, [0] * len(child._upper_bounds)]
            pending[0] += value
            if value == value:  # a NaN has no bucket (no bound is >= it), only the sum
                # The first bound >= value, as Histogram.observe's loop finds it (the last
                # bound is +Inf, so a number always has one).
                pending[1][bisect.bisect_left(child._upper_bounds, value)] += 1
        self._schedule()

    def flush(self) -> None:
        """Write every pending addition now."""
        with self._lock:
            counts, self._counts = self._counts, {}
            observed, self._observed = self._observed, {}
            self._loop = None
        for child, amount in counts.items():
            child.inc(amount)
        for child, (total, buckets) in observed.items():
            child._sum.inc(total)
            for index, count in enumerate(buckets):
                if count:
                    child._buckets[index].inc(count)

    def _schedule(self) -> None:
        scheduled = self._loop
        if scheduled is not None and not scheduled.is_closed():
            return  # written at the end of this turn with the rest
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread to run the write: now
            self.flush()
            return
        self._loop = loop
        loop.call_soon(self.flush)
