"""The worker count follows the container's CPU quota, not the host's cores (issue 19, 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from attrition.config import Settings
from attrition.cpus import available_cpus, cgroup_cpu_limit, parse_cpu_max


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("max 100000\n", None),
        ("200000 100000\n", 2.0),
        ("150000 100000", 1.5),
        ("50000 100000", 0.5),
        ("100000", 1.0),  # period omitted: the kernel's default, 100 ms
        ("-1 100000", None),  # cgroup v1's "no limit", once joined
        ("", None),
        ("garbage here", None),
        ("0 100000", None),
    ],
)
def test_parse_cpu_max(text: str, cpus: float | None) -> None:
    assert parse_cpu_max(text) == cpus


def test_available_cpus_takes_the_quota_rounded_up() -> None:
    assert available_cpus(limit=1.0, online=64) == 1
    assert available_cpus(limit=1.5, online=64) == 2
    assert available_cpus(limit=0.2, online=64) == 1
    assert available_cpus(limit=8.0, online=2) == 2  # never more than the CPUs we may run on


def test_cgroup_v2_file_wins(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("300000 100000\n", encoding="ascii")
    assert cgroup_cpu_limit(cpu_max, tmp_path / "none", tmp_path / "none") == 3.0


def test_cgroup_v1_files_when_no_v2(tmp_path: Path) -> None:
    quota, period = tmp_path / "cpu.cfs_quota_us", tmp_path / "cpu.cfs_period_us"
    quota.write_text("100000\n", encoding="ascii")
    period.write_text("100000\n", encoding="ascii")
    assert cgroup_cpu_limit(tmp_path / "cpu.max", quota, period) == 1.0
    quota.write_text("-1\n", encoding="ascii")
    assert cgroup_cpu_limit(tmp_path / "cpu.max", quota, period) is None
    assert cgroup_cpu_limit(tmp_path / "a", tmp_path / "b", tmp_path / "c") is None


def test_settings_default_workers_are_the_usable_cpus() -> None:
    assert Settings().workers == available_cpus()
