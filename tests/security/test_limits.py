"""Rate-limit buckets: the shared one counts like the in-process one, across processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from attrition.security.limits import (
    WORKERS_DIR_ENV,
    SharedTokenBucket,
    TokenBucket,
    bucket,
)


def _script(b: TokenBucket | SharedTokenBucket) -> list[float]:
    """The same timeline of takes and peeks on two keys; what each call returned."""
    out = []
    for now in (0.0, 0.1, 0.2, 0.3, 0.4):
        out.append(b.take("key:1", now))
    out.append(b.peek_blocked("key:1", 0.5))
    out.append(b.peek_blocked("key:2", 0.5))
    out.append(b.take("key:2", 0.5))
    out.append(b.take("key:1", 20.5))  # 20 s later: 20 s x 3/min = one token back
    out.append(b.take("key:1", 20.6))
    return out


def test_shared_bucket_counts_like_the_in_process_one(tmp_path: Path) -> None:
    expected = _script(TokenBucket(3))
    shared = SharedTokenBucket(tmp_path / "b.bin", 3)
    try:
        got = _script(shared)
    finally:
        shared.close()
    assert got == pytest.approx(expected)
    # 3 per minute: three pass, then wait; a token comes back every 20 s.
    assert expected[:3] == [0.0, 0.0, 0.0] and expected[3] > 0 and expected[4] > 0
    assert expected[5] > 0 and expected[6] == 0.0 and expected[7] == 0.0
    assert expected[8] == 0.0 and expected[9] > 0


def test_two_handles_on_one_file_share_the_tokens(tmp_path: Path) -> None:
    a = SharedTokenBucket(tmp_path / "b.bin", 4)
    b = SharedTokenBucket(tmp_path / "b.bin", 4)
    try:
        assert [a.take("k", 1.0), b.take("k", 1.0), a.take("k", 1.0), b.take("k", 1.0)] == [0.0] * 4
        assert a.take("k", 1.0) > 0 and b.take("k", 1.0) > 0
        assert b.peek_blocked("k", 1.0) > 0 and a.peek_blocked("other", 1.0) == 0.0
    finally:
        a.close()
        b.close()


def _take_many(path: str, count: int, results: multiprocessing.Queue[int]) -> None:
    shared = SharedTokenBucket(Path(path), 1000)
    allowed = sum(1 for _ in range(count) if shared.take("key:7", 5.0) == 0.0)
    shared.close()
    results.put(allowed)


def test_processes_racing_never_pass_more_than_the_quota(tmp_path: Path) -> None:
    """Four processes take 400 tokens each, at the same instant, from a bucket of 1,000."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[int] = context.Queue()
    path = str(tmp_path / "b.bin")
    workers = [context.Process(target=_take_many, args=(path, 400, results)) for _ in range(4)]
    for w in workers:
        w.start()
    allowed = [results.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(30)
    assert sum(allowed) == 1000  # exactly the quota: no update lost under the lock


def test_a_full_table_reuses_the_oldest_slot(tmp_path: Path) -> None:
    shared = SharedTokenBucket(tmp_path / "b.bin", 1, slots=8)
    try:
        for n in range(50):  # many more keys than slots: never an error, memory stays fixed
            assert shared.take(f"ip:{n}", float(n)) == 0.0
        assert (tmp_path / "b.bin").stat().st_size == 8 * 24
        assert shared.take("ip:49", 49.5) > 0  # the newest key still has its count
    finally:
        shared.close()


def test_bucket_is_shared_only_under_a_server_with_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(WORKERS_DIR_ENV, raising=False)
    assert isinstance(bucket("requetes", 10), TokenBucket)
    monkeypatch.setenv(WORKERS_DIR_ENV, str(tmp_path))
    shared = bucket("requetes", 10)
    assert isinstance(shared, SharedTokenBucket)
    shared.close()
    assert (tmp_path / "limite-requetes.bin").is_file()
