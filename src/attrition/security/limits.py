"""Per-minute rate limits: token buckets, per process or shared by a server's workers.

Daily quotas are not here: they are counted in PostgreSQL, in the transaction that records
the predictions (:mod:`attrition.db.usage`), one count per key for every worker of every
replica. Per-minute token buckets (:class:`Bucket`) are counted per server, in the process
or shared by its workers as below: with N replicas, a key may make up to N times its
per-minute rate (see docs/decisions.md for why).

With several workers (``attrition serve --workers N``), a bucket per process would let a key
make N times its quota, one share per worker its connections happen to reach. The server then
gives its workers a folder (``ATTRITION_WORKERS_DIR``) and each bucket becomes a small table in
a memory-mapped file there: every worker reads and updates the same counts, under an
exclusive ``flock`` held for the few microseconds of one update. The arithmetic is the same as
the in-process bucket's; times come from ``time.monotonic()``, which on Linux is the same
clock (CLOCK_MONOTONIC) in every process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

#: Set by ``attrition serve`` for its workers: a folder they share (metrics, rate limits).
WORKERS_DIR_ENV = "ATTRITION_WORKERS_DIR"


class Bucket(Protocol):
    """What the authenticator needs from a rate limit."""

    rate: float

    def take(self, key: str, now: float | None = None, cost: float = 1.0) -> float: ...

    def consume(
        self, key: str, cost: float = 1.0, now: float | None = None
    ) -> tuple[float, float]: ...

    def peek_blocked(self, key: str, now: float | None = None) -> float: ...


def _wait(rate: float, tokens: float, cost: float) -> float:
    """Seconds until ``tokens`` refill up to ``cost``."""
    return (cost - tokens) * 60.0 / rate


def _refill(rate: float, tokens: float, last: float, now: float) -> float:
    return min(max(rate, 1.0), tokens + (now - last) * rate / 60.0)


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens per minute, bursts up to ``rate`` (one process)."""

    rate: float
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def take(self, key: str, now: float | None = None, cost: float = 1.0) -> float:
        """Consume ``cost`` tokens; return 0 if allowed, else the seconds to wait."""
        return self.consume(key, cost, now)[0]

    def consume(self, key: str, cost: float = 1.0, now: float | None = None) -> tuple[float, float]:
        """Consume ``cost`` tokens if there are; (seconds to wait or 0, tokens left)."""
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.get(key, (max(self.rate, 1.0), now))
        tokens = _refill(self.rate, tokens, last, now)
        if tokens < cost:
            self.buckets[key] = (tokens, now)
            return _wait(self.rate, tokens, cost), tokens
        self.buckets[key] = (tokens - cost, now)
        if len(self.buckets) > 100_000:  # bound memory under an address-spraying attack
            self.buckets.clear()
        return 0.0, tokens - cost

    def peek_blocked(self, key: str, now: float | None = None) -> float:
        """Seconds to wait before ``key`` may pass again (0: it may), without taking a token."""
        now = time.monotonic() if now is None else now
        if key not in self.buckets:
            return 0.0
        tokens = _refill(self.rate, *self.buckets[key], now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) * 60.0 / self.rate


#: One slot: the key's 64-bit digest (0: empty), its tokens, the time they were counted.
_SLOT = struct.Struct("<Qdd")
#: Slots looked at from a key's home slot before the oldest of them is reused.
_PROBES = 8


def _digest(key: str) -> int:
    value = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return value or 1  # 0 marks an empty slot


class SharedTokenBucket:
    """:class:`TokenBucket`'s counts in a file every worker maps (see the module docstring).

    The table has a fixed number of slots (memory stays bounded whatever the number of keys
    or addresses); when a key's few candidate slots are all taken, the one counted longest
    ago is reused, which at worst gives that old key a fresh bucket.
    """

    def __init__(self, path: Path, rate: float, *, slots: int = 16_384) -> None:
        self.rate = rate
        self.slots = slots
        self._digests: dict[str, int] = {}  # key -> its digest, computed once
        size = slots * _SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with self._locked():
            if os.fstat(self._fd).st_size < size:
                os.ftruncate(self._fd, size)  # zero-filled: every slot empty
        self._map = mmap.mmap(self._fd, size)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _find(self, digest: int) -> tuple[int, tuple[float, float] | None]:
        """The key's slot and its (tokens, last), or the slot to use and None if it has none."""
        home = digest % self.slots
        free = oldest = -1
        oldest_time = float("inf")
        for step in range(_PROBES):
            index = (home + step) % self.slots
            stored, tokens, last = _SLOT.unpack_from(self._map, index * _SLOT.size)
            if stored == digest:
                return index, (tokens, last)
            if stored == 0 and free < 0:
                free = index
            elif stored != 0 and last < oldest_time:
                oldest, oldest_time = index, last
        return (free if free >= 0 else oldest), None

    def take(self, key: str, now: float | None = None, cost: float = 1.0) -> float:
        """Consume ``cost`` tokens; return 0 if allowed, else the seconds to wait."""
        return self.consume(key, cost, now)[0]

    def consume(self, key: str, cost: float = 1.0, now: float | None = None) -> tuple[float, float]:
        """Consume ``cost`` tokens if there are; (seconds to wait or 0, tokens left)."""
        now = time.monotonic() if now is None else now
        digest = self._digests.get(key)
        if digest is None:
            if len(self._digests) > 10_000:  # bounded, whatever the number of addresses
                self._digests.clear()
            digest = self._digests[key] = _digest(key)
        # The lock by hand rather than through ``_locked``: this runs twice per prediction,
        # and the generator-based context manager cost as much as the update itself.
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            index, state = self._find(digest)
            tokens, last = state if state is not None else (max(self.rate, 1.0), now)
            tokens = _refill(self.rate, tokens, last, now)
            wait = 0.0
            if tokens < cost:
                wait = _wait(self.rate, tokens, cost)
            else:
                tokens -= cost
            _SLOT.pack_into(self._map, index * _SLOT.size, digest, tokens, now)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        return wait, tokens

    def peek_blocked(self, key: str, now: float | None = None) -> float:
        """Seconds to wait before ``key`` may pass again (0: it may), without taking a token."""
        now = time.monotonic() if now is None else now
        with self._locked():
            _, state = self._find(_digest(key))
        if state is None:
            return 0.0
        tokens = _refill(self.rate, *state, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) * 60.0 / self.rate


def bucket(name: str, rate: float) -> Bucket:
    """A bucket shared by the server's workers when it has several, else one of this process."""
    directory = os.environ.get(WORKERS_DIR_ENV)
    if directory:
        return SharedTokenBucket(Path(directory) / f"limite-{name}.bin", rate)
    return TokenBucket(rate)
