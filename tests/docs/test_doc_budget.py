"""The connection budget of docs/exploitation.md follows the settings' defaults."""

from __future__ import annotations

import re

from attrition.config import PROJECT_ROOT, DatabaseSettings

DOC = PROJECT_ROOT / "docs" / "exploitation.md"


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("### Budget de connexions")
    return text[start : text.index("### ", start + 5)]


def test_the_documented_pool_sizes_are_the_defaults() -> None:
    section = _section()
    defaults = DatabaseSettings()
    found = dict(re.findall(r"\| `ATTRITION_DB__(POOL_M\w+_SIZE)` \| (\d+) \|", section))
    assert found == {
        "POOL_MAX_SIZE": str(defaults.pool_max_size),
        "POOL_MIN_SIZE": str(defaults.pool_min_size),
    }


def test_each_budget_line_is_replicas_times_workers_times_the_pool() -> None:
    rows = re.findall(r"\| (\d+) × (\d+) \| (\d+) \|", _section())
    assert len(rows) >= 3
    pool = DatabaseSettings().pool_max_size
    for replicas, workers, total in rows:
        assert int(total) == int(replicas) * int(workers) * pool
