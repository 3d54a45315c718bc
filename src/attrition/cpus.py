"""How many CPUs this process may really use: affinity, then the container's CPU quota.

``os.cpu_count()`` is the host's count: in a container limited to one CPU on a 64-core node,
sizing the workers on it would start 64 processes, each with its own database pool and
model in memory. The quota is read from the cgroup files (v2 ``cpu.max``, else v1
``cpu.cfs_quota_us``/``cpu.cfs_period_us``), as the JVM and Go runtimes do.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def parse_cpu_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` line (``"<quota> <period>"``); None: no limit.

    ``"max 100000"`` means unlimited; ``"150000 100000"`` means 1.5 CPUs. Anything else
    (empty, malformed, non-positive) counts as no limit.
    """
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota = int(parts[0])
        period = int(parts[1]) if len(parts) > 1 else 100_000
    except ValueError:
        return None
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None


def cgroup_cpu_limit(
    cpu_max: Path = CGROUP_V2_CPU_MAX,
    v1_quota: Path = CGROUP_V1_QUOTA,
    v1_period: Path = CGROUP_V1_PERIOD,
) -> float | None:
    """The CPU quota of this process's cgroup, in CPUs (None when there is none)."""
    text = _read(cpu_max)
    if text is not None:
        return parse_cpu_max(text)
    quota, period = _read(v1_quota), _read(v1_period)
    if quota is None or period is None:
        return None
    return parse_cpu_max(f"{quota.strip()} {period.strip()}")  # v1 says -1 for no limit


def available_cpus(limit: float | None = None, online: int | None = None) -> int:
    """Whole CPUs this process may use: min(affinity, ceil(quota)), at least 1.

    ``limit`` and ``online`` default to the cgroup quota and the scheduler affinity.
    """
    if online is None:
        try:
            online = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            online = os.cpu_count() or 1
    if limit is None:
        limit = cgroup_cpu_limit()
    count = online if limit is None else min(online, math.ceil(limit))
    return max(1, count)
