"""The performance benchmark of the service: `make bench` (a few minutes on 2 cores).

Starts everything the way `make run` does, in a temporary directory, and measures on
127.0.0.1 only:

1. model only: the serving path (compiled model on numpy columns) against the plain
   scikit-learn pipeline on a DataFrame, for one row and for 10,000 rows;
2. start-up: `attrition serve --no-train` until `/ready` answers 200 (model loaded from the
   database), with the embedded PostgreSQL stopped (cold) and already running (warm);
3. `POST /v1/predictions` under a closed-loop load at several concurrencies, for the service,
   for the plain reference variant (bench/baseline_app.py) on the same database, and for the
   floor (bench/floor_app.py: FastAPI validating the same schema and replying a constant),
   all three served the same way; after each run of the service and of the plain variant,
   the inputs and outputs recorded in PostgreSQL are counted;
4. `POST /v1/predictions/batch` with 1,000 employees;
5. resident memory of each worker, CPU time of the service, PostgreSQL and the load generator;
6. the machine: CPU model, cores, memory, kernel, Python, and a CPU speed probe (a fixed
   pure-Python loop, timed at the start and at the end of the run), so that absolute figures
   of two runs can be put side by side; only the ratios measured in one run carry over.

Writes bench/results/<date>-<sha>.json, then renders bench/results/latest.md,
docs/performance.md and docs/img/performance/latence.png from it (bench/report.py).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
BIN = Path(sys.executable).parent

#: Loose rate limit for the run: the bench measures the service, not its throttling.
RATE_LIMIT = "100000000"

#: Every per-key limit and quota raised for the run (requests and predictions per minute,
#: predictions per UTC day): a level of 5,000 predictions must not meet a 429.
LIMITS_ENV = {
    "ATTRITION_API__RATE_LIMIT_PER_MINUTE": RATE_LIMIT,
    "ATTRITION_API__PREDICTIONS_PER_MINUTE": RATE_LIMIT,
    "ATTRITION_API__PREDICTIONS_PER_DAY": RATE_LIMIT,
}


def say(message: str) -> None:
    print(f"› {message}", flush=True)


# ---- environment -----------------------------------------------------------------------------


def git_short_sha() -> str:
    """The checked-out commit, read from .git without running git (``nogit`` if none)."""
    git = ROOT / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = Path(git.read_text().split(":", 1)[1].strip())
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head[:7]
        ref = head.split(" ", 1)[1]
        for base in (git, git.parent.parent if "worktrees" in git.parts else git):
            if (base / ref).is_file():
                return (base / ref).read_text().strip()[:7]
            packed = base / "packed-refs"
            if packed.is_file():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line[:7]
    except OSError:
        pass
    return "nogit"


#: Iterations of the CPU speed probe (about 0.1 to 0.3 s on current x86 cores).
PROBE_LOOPS = 2_000_000


def cpu_probe(repeats: int = 5) -> dict[str, Any]:
    """Time a fixed pure-Python loop: a speed index of this machine's cores, right now.

    The same bytecode on every machine (integer arithmetic, a loop, no allocation beyond
    small ints): a machine twice as slow, or a core shared with another job, shows twice the
    time. The minimum of ``repeats`` is the least disturbed measure, the median shows noise.
    """
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        total = 0
        for i in range(PROBE_LOOPS):
            total += (i * i) % 7
        times.append(time.perf_counter() - started)
        if total != 3_999_997:  # the loop ran in full (and was not optimised away)
            raise RuntimeError(f"CPU probe: unexpected total {total}")
    times.sort()
    return {
        "loops": PROBE_LOOPS,
        "repeats": repeats,
        "min_ms": times[0] * 1000,
        "median_ms": statistics.median(times) * 1000,
        "max_ms": times[-1] * 1000,
    }


def machine() -> dict[str, Any]:
    cpu = "inconnu"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("fastapi", "uvicorn", "psycopg", "sqlalchemy", "scikit-learn", "numpy", "httpx"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[name] = version(name)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def data_dir() -> Path:
    env = os.environ.get("ATTRITION_DATA_DIR")
    if env:
        return Path(env)
    shared = ROOT.parent / "shared" / "data" / "technova"
    return shared if shared.is_dir() else ROOT / "data" / "raw"


# ---- timing helpers --------------------------------------------------------------------------


def time_calls(
    fn: Callable[[], object], *, budget_s: float, min_calls: int, max_calls: int
) -> dict:
    """Call ``fn`` repeatedly (within a time budget) and summarise the per-call time in ms."""
    fn()  # warm caches
    times: list[float] = []
    stop = time.perf_counter() + budget_s
    while len(times) < max_calls and (len(times) < min_calls or time.perf_counter() < stop):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    times.sort()
    return {
        "calls": len(times),
        "median_ms": statistics.median(times) * 1000,
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
        "min_ms": times[0] * 1000,
    }


# ---- phases ----------------------------------------------------------------------------------


def prepare(settings: Any, workdir: Path) -> tuple[Any, str, str, list[dict[str, Any]]]:
    """Database, data, a model and a `predicteur` key, as `make run` would leave them."""
    from sqlalchemy import text

    from attrition.bootstrap import load_if_empty, prepare_database
    from attrition.data.vocabulary import FEATURE_NAMES
    from attrition.db.engine import resolve_database
    from attrition.model.pipeline import train_and_register
    from attrition.security.store import create_key

    db = resolve_database(settings)
    prepare_database(settings, say, db)
    load_if_empty(db, settings, say)
    started = time.perf_counter()
    version = train_and_register(
        db, settings, activate=True, repeats=1, candidates=("regression_logistique",)
    )
    say(f"Modèle {version} entraîné et activé en {time.perf_counter() - started:.1f} s.")
    key = create_key(db, settings, name="bench", role="predicteur").key
    with db.owner_engine().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT "
                + ", ".join(FEATURE_NAMES)
                + " FROM employee_features ORDER BY id_employee"
            )
        ).mappings()
        payloads = [
            {k: (float(v) if k == "augmentation_salaire_precedente" else v) for k, v in r.items()}
            for r in rows
        ]
    (workdir / "payloads.json").write_bytes(orjson.dumps(payloads))
    return db, version, key, payloads


def model_only(db: Any, payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Serving path vs scikit-learn pipeline, one row and 10,000 rows, same process, idle box."""
    import numpy as np
    import pandas as pd
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from attrition.db.models import ModelVersion
    from attrition.model.artifact import load_pipeline
    from attrition.model.compiled import CompiledLinearModel
    from attrition.model.explanations import score_and_explain
    from attrition.model.features import columns_from_records, to_model_frame
    from attrition.model.runtime import LoadedModel

    with Session(db.owner_engine()) as session:
        row = session.scalars(select(ModelVersion).where(ModelVersion.is_active)).one()
        pipeline = load_pipeline(row.artifact, row.artifact_sha256)
    compiled = CompiledLinearModel.from_pipeline(pipeline)
    one = [payloads[0]]
    many = [payloads[i % len(payloads)] for i in range(10_000)]

    def serving(records: list[dict[str, Any]]) -> Any:
        return compiled.predict_proba(columns_from_records(records))

    loaded = LoadedModel(
        id=row.id,
        version=row.version,
        algorithm=row.algorithm,
        threshold=row.threshold,
        threshold_criterion=row.threshold_criterion,
        metrics={},
        sha256=row.artifact_sha256,
        created_at=row.created_at,
        compiled=compiled,
    )

    def serving_top(records: list[dict[str, Any]]) -> Any:
        # What the API runs: probabilities and the JSON explanations (5 factors each way).
        return score_and_explain(loaded, columns_from_records(records))

    def serving_explained(records: list[dict[str, Any]]) -> Any:
        columns = columns_from_records(records)
        return compiled.predict_proba(columns), compiled.explain(columns, top_k=5)

    def sklearn(records: list[dict[str, Any]]) -> Any:
        return pipeline.predict_proba(to_model_frame(pd.DataFrame(records)))[:, 1]

    gap = float(np.max(np.abs(serving(many) - sklearn(many))))
    gc.freeze()  # as the API does after start-up: no full collection walks the libraries
    single = {"budget_s": 3.0, "min_calls": 200, "max_calls": 5000}
    bulk = {"budget_s": 6.0, "min_calls": 5, "max_calls": 30}
    out = {
        "rows_1": {
            "compiled": time_calls(lambda: serving(one), **single),
            "compiled_top_factors": time_calls(lambda: serving_top(one), **single),
            "compiled_with_explanation": time_calls(lambda: serving_explained(one), **single),
            "sklearn": time_calls(lambda: sklearn(one), **single),
        },
        "rows_10000": {
            "compiled": time_calls(lambda: serving(many), **bulk),
            "compiled_top_factors": time_calls(lambda: serving_top(many), **bulk),
            "compiled_with_explanation": time_calls(lambda: serving_explained(many), **bulk),
            "sklearn": time_calls(lambda: sklearn(many), **bulk),
        },
        "max_abs_difference": gap,
    }
    for size in ("rows_1", "rows_10000"):
        r = out[size]
        r["speedup"] = r["sklearn"]["median_ms"] / r["compiled"]["median_ms"]
    return out


def import_times() -> dict[str, float]:
    """Seconds to import, in a fresh interpreter, what a worker imports before it is ready."""
    out = {}
    for name, modules in (
        ("skops_sklearn", "import skops.io, sklearn.pipeline"),
        ("api_app", "import attrition.api.app"),
    ):
        code = f"import time; t = time.perf_counter(); {modules}; print(time.perf_counter() - t)"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
        )
        out[name] = float(done.stdout.strip())
    return out


class Service:
    """A server process started by the bench, stopped by its id (and its process group)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self.handle = log.open("ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self.handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, url: str, *, timeout_s: float = 120.0) -> float:
        """Seconds from spawn to the first `/ready` 200; log markers seen meanwhile in ``marks``."""
        deadline = time.perf_counter() + timeout_s
        self.marks: dict[str, float] = {}
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} stopped: see {self.log}")
                text = self.log.read_text(errors="replace")
                for marker in ("Serveur à l'écoute sur", "Démarrage de l'application"):
                    if marker not in self.marks and marker in text:
                        self.marks[marker] = time.perf_counter() - self.started
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url + "/ready").status_code == 200:
                        return time.perf_counter() - self.started
                time.sleep(0.01)
        raise TimeoutError(f"{self.name} not ready after {timeout_s:.0f} s: see {self.log}")

    def wait_log(self, marker: str, count: int, *, timeout_s: float = 60.0) -> float:
        """Seconds from spawn until ``marker`` appeared ``count`` times in the log."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if self.log.read_text(errors="replace").count(marker) >= count:
                return time.perf_counter() - self.started
            time.sleep(0.01)
        raise TimeoutError(f"{self.name}: {count} × {marker!r} not seen in {self.log}")

    def processes(self) -> list[psutil.Process]:
        """The serving processes: the workers, or the main process when it serves itself."""
        main = psutil.Process(self.proc.pid)
        children = [
            p
            for p in main.children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())
        ]
        return children or [main]

    def all_processes(self) -> list[psutil.Process]:
        main = psutil.Process(self.proc.pid)
        return [main, *main.children(recursive=True)]

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.handle.close()


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        main = psutil.Process(pid)
        return [main, *main.children(recursive=True)]
    except (OSError, ValueError, psutil.Error):
        return []


def load(
    url: str,
    key: str,
    payloads: Path,
    *,
    concurrency: int,
    requests: int,
    prefix: str,
    args: Any,
    watch: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    argv = [
        sys.executable,
        str(BENCH / "load.py"),
        "--url",
        url,
        "--key",
        key,
        "--payloads",
        str(payloads),
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--warmup",
        str(max(50, 2 * concurrency)),
        "--max-seconds",
        str(args.max_seconds),
        "--prefix",
        prefix,
    ]
    for name, pids in (watch or {}).items():
        argv += ["--watch", name, ",".join(map(str, pids))]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=args.max_seconds + 60, check=True
    )
    return orjson.loads(done.stdout.strip().splitlines()[-1])


def recorded(db: Any, prefix: str) -> dict[str, int]:
    """Inputs and outputs recorded under a request-id prefix (exact counts)."""
    from sqlalchemy import text

    with db.owner_engine().connect() as conn:
        inputs = conn.scalar(
            text(
                "SELECT count(*) FROM prediction_inputs "
                "WHERE starts_with(coalesce(client_request_id, request_id), :p)"
            ),
            {"p": prefix + "-"},
        )
        outputs = conn.scalar(
            text(
                "SELECT count(*) FROM predictions p JOIN prediction_inputs i ON i.id = p.input_id "
                "WHERE starts_with(coalesce(i.client_request_id, i.request_id), :p)"
            ),
            {"p": prefix + "-"},
        )
    return {"inputs": int(inputs or 0), "outputs": int(outputs or 0)}


def settle(db: Any, limit_s: float = 60.0) -> dict[str, Any]:
    """Wait until the machine is at rest again, as it is before the first level.

    After the load levels the service is still sealing the audit chain of the predictions
    just recorded (every ``seal_interval_s``) and PostgreSQL's autovacuum is analysing the
    tables that grew: measured right away, a batch of 1,000 shared the cores with them
    (median 93 ms, against 84 ms after 20 s of rest, same run). The single predictions of
    the first level are measured on a machine at rest; the batch is too, so that its ratio
    compares like with like. Waits for an empty sealing queue, no autovacuum worker and
    less than 15 % of the machine's CPU busy over half a second, at most ``limit_s``.
    """
    from sqlalchemy import text

    started = time.perf_counter()
    waited_for: dict[str, int] = {"pending_seal": 0, "autovacuum": 0, "busy_cpu": 0}
    while time.perf_counter() - started < limit_s:
        with db.owner_engine().connect() as conn:
            pending = int(conn.scalar(text("SELECT count(*) FROM audit_pending")) or 0)
            vacuum = int(
                conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE backend_type = 'autovacuum worker'"
                    )
                )
                or 0
            )
        busy = psutil.cpu_percent(interval=0.5)
        if pending == 0 and vacuum == 0 and busy < 15.0:
            break
        waited_for["pending_seal"] += pending > 0
        waited_for["autovacuum"] += vacuum > 0
        waited_for["busy_cpu"] += busy >= 15.0
    waited = time.perf_counter() - started
    say(f"au repos après {waited:.1f} s (scellement, autovacuum, CPU : {waited_for})")
    return {"waited_s": waited, "polls_waiting_for": waited_for}


#: WAL segments recycled before the load levels (16 MB each): about 1.5 times what a default
#: run writes (a prediction writes 4 to 4.5 KB of log, `wal` in the results).
WARM_WAL_SEGMENTS = 48
WAL_SEGMENT_BYTES = 16 * 1024 * 1024


def wal_lsn(db: Any) -> int:
    """PostgreSQL's current write-ahead log position, in bytes."""
    with db.connect(autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0])


def prediction_count(db: Any) -> int:
    from sqlalchemy import text

    with db.owner_engine().connect() as conn:
        return int(conn.scalar(text("SELECT count(*) FROM predictions")) or 0)


def warm_wal(db: Any, segments: int = WARM_WAL_SEGMENTS) -> dict[str, Any]:
    """Give the new cluster the recycled log segments that a server in service has.

    A cluster made by initdb a minute before has no write-ahead log segment to reuse: each
    time 16 MB of log is full, PostgreSQL creates the next file and fills it with zeros
    while it holds the log's write lock, and every commit waits for it (about 18 ms on this
    machine; at concurrency 32 the service writes 16 MB of log about every second, so a pass
    of 5,000 predictions met one or two such stalls, in its p99). A server that has run for
    a while reuses the segments its checkpoints freed instead (``min_wal_size`` /
    ``max_wal_size``). Switching to a new segment ``segments`` times, then a checkpoint,
    leaves that many recycled: the levels measure that steady state, not the first minutes
    of a new cluster. Needs the superuser (the embedded server's, or ``pg_checkpoint`` and
    the right to call ``pg_switch_wal``); without it the run goes on cold and says so.
    """
    import psycopg

    started = time.perf_counter()
    try:
        with db.connect(admin=True, autocommit=True) as conn:
            for _ in range(segments):
                conn.execute("SELECT pg_logical_emit_message(false, 'attrition-bench', '')")
                conn.execute("SELECT pg_switch_wal()")
            conn.execute("CHECKPOINT")
    except psycopg.Error as exc:
        say(f"journal de PostgreSQL non préchauffé : {type(exc).__name__}")
        return {"segments": 0, "seconds": 0.0, "error": type(exc).__name__}
    took = time.perf_counter() - started
    say(f"journal de PostgreSQL préchauffé : {segments} segments recyclés en {took:.1f} s")
    return {"segments": segments, "seconds": took}


def quiet(db: Any, limit_s: float = 10.0) -> float:
    """Wait until the service's deferred work is done; the seconds waited.

    The floor writes nothing: the sealing of the service's previous pass (every
    ``seal_interval_s``) and the autovacuum of the tables it grew must not fall into the
    floor's pass, where they would slow the floor down and flatter the ratio.
    """
    from sqlalchemy import text

    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        with db.owner_engine().connect() as conn:
            busy = conn.scalar(
                text(
                    # What the sealer will seal (a queued id whose prediction is gone is
                    # skipped by it, not work), and autovacuum in this database only.
                    "SELECT EXISTS (SELECT 1 FROM audit_pending q "
                    "JOIN predictions p ON p.id = q.prediction_id) OR EXISTS (SELECT 1 FROM "
                    "pg_stat_activity WHERE backend_type = 'autovacuum worker' "
                    "AND datname = current_database())"
                )
            )
        if not busy:
            break
        time.sleep(0.05)
    return time.perf_counter() - started


def load_phase(
    variant: str,
    service: Service,
    url: str,
    key: str,
    db: Any,
    pgdata: Path,
    run_id: str,
    workdir: Path,
    concurrency: int,
    args: Any,
    *,
    records: bool = True,
    round_no: int = 0,
) -> dict[str, Any]:
    """One concurrency level of one variant; ``records``: count what PostgreSQL recorded."""
    prefix = f"{run_id}-{variant}-c{concurrency}-r{round_no}"
    postmaster = postgres_processes(pgdata)[:1]
    result = load(
        url,
        key,
        workdir / "payloads.json",
        concurrency=concurrency,
        requests=args.requests,
        prefix=prefix,
        args=args,
        watch={
            "service": [service.proc.pid],
            "postgres": [p.pid for p in postmaster],
        },
    )
    cpu = result.pop("cpu_s")
    result["service_cpu_s"] = cpu["service"]
    # Per process of the service (parent, workers): shows that every worker took its share.
    result["service_cpu_per_process_s"] = sorted(
        (v for k, v in cpu.items() if k.startswith("service/")), reverse=True
    )
    result["postgres_cpu_s"] = cpu["postgres"]
    result["machine_busy_s"] = cpu["machine_busy"]
    result["machine_capacity_s"] = cpu["machine_total"]
    # Whatever else ran on the (shared) machine meanwhile: other users' jobs, the kernel.
    ours = result["service_cpu_s"] + result["postgres_cpu_s"] + result["client_cpu_s"]
    result["other_cpu_s"] = max(0.0, result["machine_busy_s"] - ours)
    lat = result["latency_ms"]
    line = (
        f"{variant:8s} c={concurrency:<3d} passe {round_no + 1}  "
        f"{result['throughput_rps']:8.1f} req/s  "
        f"p50 {lat['p50']:7.2f} ms  p95 {lat['p95']:7.2f} ms  p99 {lat['p99']:7.2f} ms  "
        f"erreurs {result['errors']}"
    )
    if records:
        result["recorded"] = recorded(db, prefix)
        result["lost"] = result["ok"] - result["recorded"]["outputs"]
        result["orphans"] = result["recorded"]["inputs"] - result["recorded"]["outputs"]
        line += f"  enregistrées {result['recorded']['outputs']}/{result['ok']}"
    say(line)
    return result


class Measure(Protocol):
    """:func:`load_phase` with the run's key, database and directories already given."""

    def __call__(
        self,
        variant: str,
        service: Service,
        url: str,
        concurrency: int,
        args: Any,
        *,
        records: bool,
        round_no: int = 0,
        run_id: str = "",
    ) -> dict[str, Any]: ...


def sustained_phase(
    services: dict[str, tuple[Service, str]],
    db: Any,
    args: Any,
    rates: dict[str, float],
    measure: Measure,
) -> dict[str, Any]:
    """One long pass at concurrency 32 of the service, then of the floor, each at rest first.

    A level's pass lasts about a second; the service seals the audit chain every
    ``seal_interval_s`` (5 s), so a short pass holds a sealing round or not, by chance, and
    its ratio leaves part of that cost out. A pass of ``args.sustained_s`` seconds (counted
    from the level's median rate) holds the rounds a server under steady load goes through:
    its ratio to the floor is the one to expect over minutes.
    """
    out: dict[str, Any] = {"seconds": args.sustained_s, "concurrency": 32}
    for variant, (served, served_url) in services.items():
        waited = quiet(db)
        requests = max(args.requests, int(rates[variant] * args.sustained_s))
        phase_args = argparse.Namespace(**{**vars(args), "requests": requests})
        phase_args.max_seconds = max(args.max_seconds, 3 * args.sustained_s)
        name = variant if variant != "service" else "api"
        result = measure(name, served, served_url, 32, phase_args, records=variant == "service")
        result["quiet_wait_s"] = waited
        out[variant] = result
    service, floor = out.get("service"), out.get("floor")
    if service and floor:
        recorded = service.get("recorded", {}).get("outputs", 0)
        out["ratio"] = (recorded / service["wall_s"]) / floor["throughput_rps"]
        out["p99_ratio"] = service["latency_ms"]["p99"] / floor["latency_ms"]["p99"]
    return out


def median_pass(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """The pass of median throughput (the lower middle one for an even count), whole, with
    every pass's throughput and latencies beside it (``passes``)."""
    ranked = sorted(passes, key=lambda p: p["throughput_rps"])
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    chosen["passes"] = [
        {
            "throughput_rps": p["throughput_rps"],
            "p50_ms": p["latency_ms"]["p50"],
            "p99_ms": p["latency_ms"]["p99"],
            **({"quiet_wait_s": p["quiet_wait_s"]} if "quiet_wait_s" in p else {}),
        }
        for p in passes
    ]
    return chosen


def batch_phase(
    url: str, key: str, db: Any, payloads: list[dict[str, Any]], run_id: str, args: Any
) -> dict[str, Any]:
    body = orjson.dumps({"employes": payloads[: args.batch_size]})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    runs = []
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for i in range(args.batch_repeats + 1):
            request_id = f"{run_id}-batch-{i}"
            started = time.perf_counter()
            response = client.post(
                "/v1/predictions/batch",
                content=body,
                headers={**headers, "X-Request-ID": request_id},
            )
            elapsed = time.perf_counter() - started
            if response.status_code != 201:
                raise RuntimeError(f"batch refused: {response.status_code} {response.text[:300]}")
            if i == 0:
                continue  # warm-up
            counts = recorded(db, f"{run_id}-batch")  # cumulative, checked below
            runs.append({"seconds": elapsed, "recorded_outputs_cumulative": counts["outputs"]})
    times = sorted(r["seconds"] for r in runs)
    total = recorded(db, f"{run_id}-batch")
    expected = args.batch_size * (args.batch_repeats + 1)
    median = statistics.median(times)
    result = {
        "size": args.batch_size,
        "body_bytes": len(body),
        "repeats": len(runs),
        "median_ms": median * 1000,
        "min_ms": times[0] * 1000,
        "max_ms": times[-1] * 1000,
        "rows_per_s": args.batch_size / median,
        "recorded_inputs": total["inputs"],
        "recorded_outputs": total["outputs"],
        "expected_records": expected,
    }
    say(
        f"lot de {args.batch_size} : médiane {result['median_ms']:.1f} ms, "
        f"{result['rows_per_s']:.0f} lignes/s, enregistrées {total['outputs']}/{expected}"
    )
    return result


def memory(service: Service) -> dict[str, Any]:
    rss = []
    for p in service.processes():
        with contextlib.suppress(psutil.Error):
            rss.append(p.memory_info().rss / 2**20)
    return {"workers": len(rss), "rss_mib": rss, "rss_mib_max": max(rss) if rss else None}


def profile_phase(
    service: Service, url: str, key: str, workdir: Path, run_id: str, args: Any
) -> dict[str, Any] | None:
    """Sample one worker with py-spy during a concurrency-32 run; top functions by self time."""
    py_spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if py_spy is None:
        say("py-spy absent : profil ignoré (installez les dépendances de développement).")
        return None
    worker = service.processes()[0]
    raw = workdir / "profile.txt"
    seconds = 8
    spy = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(worker.pid),
            "--duration",
            str(seconds),
            "--rate",
            "250",
            # Non-blocking: py-spy reads the stacks without pausing the worker. Blocking
            # sampling, tried first, only got about a hundred samples out of two thousand
            # from a busy worker; a few non-blocking samples are torn and dropped instead.
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    # The throughput of this run is not reported (the sampler takes CPU from the service).
    try:
        during = load(
            url,
            key,
            workdir / "payloads.json",
            concurrency=32,
            requests=args.requests * 4,
            prefix=f"{run_id}-profile",
            args=argparse.Namespace(max_seconds=seconds - 1),
        )
    except subprocess.SubprocessError as exc:
        say(f"charge du profil interrompue : {exc}")
        during = {}
    spy.wait(seconds + 30)
    if not raw.is_file():
        return None
    from report import summarise_profile  # bench/ is on sys.path when run as a script

    summary = summarise_profile(raw.read_text(), top=args.profile_top)
    summary["requests_during_profile"] = during.get("ok")
    return summary


# ---- orchestration ---------------------------------------------------------------------------


def serve_argv(port: int, workers: int) -> list[str]:
    return [
        str(BIN / "attrition"),
        "serve",
        "--no-train",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def bench_app_argv(port: int, workers: int, app: str = "baseline_app:create_app") -> list[str]:
    """A bench/ app (the plain variant or the floor), served like the service.

    One listening socket per worker (attrition.api.server). With uvicorn's shared socket, the
    32 connections often all went to one worker, and the ratio measured the socket rather than
    the request path.
    """
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from attrition.api.server import serve; "
        "serve(sys.argv[4], factory=True, host='127.0.0.1', "
        "port=int(sys.argv[2]), workers=int(sys.argv[3]), log_level='warning', "
        "access_log=False)"
    )
    return [sys.executable, "-c", code, str(BENCH), str(port), str(workers), app]


@contextlib.contextmanager
def started(service: Service) -> Iterator[Service]:
    try:
        yield service
    finally:
        service.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark du service (make bench).")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--concurrency", default="1,8,32", help="niveaux, séparés par des virgules")
    parser.add_argument("--requests", type=int, default=5000, help="requêtes par niveau")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="passes alternées du service et du plancher par niveau (la médiane est retenue)",
    )
    parser.add_argument("--max-seconds", type=float, default=45.0, help="borne par niveau")
    parser.add_argument(
        "--sustained-s",
        type=float,
        default=8.0,
        help="durée de la passe longue à concurrence 32 (régime établi ; 0 : sans)",
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-repeats", type=int, default=9)
    parser.add_argument("--no-baseline", action="store_true", help="sans la variante simple")
    parser.add_argument(
        "--no-floor", action="store_true", help="sans le plancher (FastAPI seul, réponse fixe)"
    )
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="profil py-spy d'un processus à concurrence 32 (si py-spy est installé)",
    )
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--keep", action="store_true", help="garder le dossier temporaire")
    parser.add_argument("--label", default="", help="suffixe du fichier de résultats")
    parser.add_argument("--no-report", action="store_true", help="ne pas régénérer la doc")
    parser.add_argument(
        "--group-commit",
        choices=("on", "off"),
        default=None,
        help="forcer ATTRITION_DB__GROUP_COMMIT (défaut : le réglage du service)",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]

    workdir = Path(tempfile.mkdtemp(prefix="attr-bench-", dir="/tmp"))
    pgdata = workdir / "pgdata"
    run_id = "b" + datetime.now(UTC).strftime("%H%M%S")
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "ATTRITION_DATABASE_URL"}
    }
    env.update(
        APP_ENV="dev",
        ATTRITION_PGDATA=str(pgdata),
        ATTRITION_DATA_DIR=str(data_dir()),
        **LIMITS_ENV,
    )
    if args.group_commit is not None:
        env["ATTRITION_DB__GROUP_COMMIT"] = "true" if args.group_commit == "on" else "false"
    os.environ.update({k: env[k] for k in env if k.startswith(("ATTRITION_", "APP_"))})
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(BENCH))

    from attrition.config import get_settings
    from attrition.db.engine import resolve_database

    get_settings.cache_clear()
    settings = get_settings()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_short_sha(),
        "machine": {**machine(), "cpu_probe_start": cpu_probe()},
        "config": {
            "workers": args.workers,
            "concurrency": levels,
            "requests_per_level": args.requests,
            "rounds_per_level": args.rounds,
            "sustained_s": args.sustained_s,
            "max_seconds_per_level": args.max_seconds,
            "batch_size": args.batch_size,
            "log_level": settings.log_level,
            "pool_max_size": settings.db.pool_max_size,
            "group_commit": settings.db.group_commit,
            "rate_limit_per_minute": int(RATE_LIMIT),
            "floor": not args.no_floor,
        },
    }
    say(f"Dossier de travail : {workdir}")
    db = None
    try:
        db, version, key, payloads = prepare(settings, workdir)
        results["config"]["model_version"] = version
        say("Modèle seul : chemin de service contre pipeline scikit-learn…")
        results["model"] = model_only(db, payloads)
        m = results["model"]
        say(
            f"1 ligne : compilé {m['rows_1']['compiled']['median_ms'] * 1000:.0f} µs, "
            f"scikit-learn {m['rows_1']['sklearn']['median_ms'] * 1000:.0f} µs ; "
            f"10 000 lignes : {m['rows_10000']['compiled']['median_ms']:.1f} ms contre "
            f"{m['rows_10000']['sklearn']['median_ms']:.1f} ms"
        )

        results["imports"] = import_times()
        # Cold start: the bench lets go of the embedded server, `attrition serve` starts it.
        db.stop()
        db = None
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        startup: dict[str, Any] = {}
        cold = Service("api-cold", serve_argv(port, args.workers), env, workdir / "serve-cold.log")
        with started(cold):
            startup["cold_first_ready_s"] = cold.wait_ready(url)
            startup["cold_server_listening_s"] = cold.marks.get("Serveur à l'écoute sur")
            startup["cold_all_workers_s"] = cold.wait_log("service prêt", args.workers)
            db = resolve_database(settings)  # hold the server while the API restarts
        say(f"Démarrage à froid : prêt en {startup['cold_first_ready_s']:.2f} s.")
        api = Service("api", serve_argv(port, args.workers), env, workdir / "serve.log")
        with started(api):
            startup["warm_first_ready_s"] = api.wait_ready(url)
            startup["warm_server_listening_s"] = api.marks.get("Serveur à l'écoute sur")
            startup["warm_all_workers_s"] = api.wait_log("service prêt", args.workers)
            results["startup"] = startup
            say(f"Démarrage, base déjà démarrée : prêt en {startup['warm_first_ready_s']:.2f} s.")
            results["memory_idle"] = memory(api)

            baseline = None
            base_url = ""
            if not args.no_baseline:
                base_port = free_port()
                base_url = f"http://127.0.0.1:{base_port}"
                base_env = {
                    **env,
                    "BASELINE_DATABASE_URL": db.owner_url.render_as_string(hide_password=False),
                    "PYTHONPATH": str(ROOT / "src"),
                }
                baseline = Service(
                    "baseline",
                    bench_app_argv(base_port, args.workers),
                    base_env,
                    workdir / "baseline.log",
                )
            floor = None
            floor_url = ""
            if not args.no_floor:
                floor_port = free_port()
                floor_url = f"http://127.0.0.1:{floor_port}"
                floor = Service(
                    "floor",
                    bench_app_argv(floor_port, args.workers, "floor_app:create_app"),
                    {**env, "PYTHONPATH": str(ROOT / "src")},
                    workdir / "floor.log",
                )

            def measure(
                variant: str,
                service: Service,
                service_url: str,
                concurrency: int,
                phase_args: Any,
                *,
                records: bool,
                round_no: int = 0,
                run_id: str = run_id,
            ) -> dict[str, Any]:
                return load_phase(
                    variant, service, service_url, key, db, pgdata, run_id, workdir,
                    concurrency, phase_args, records=records, round_no=round_no,
                )  # fmt: skip

            with contextlib.ExitStack() as stack:
                if baseline is not None:
                    stack.enter_context(started(baseline))
                    results["startup"]["baseline_ready_s"] = baseline.wait_ready(base_url)
                if floor is not None:
                    stack.enter_context(started(floor))
                    results["startup"]["floor_ready_s"] = floor.wait_ready(floor_url)
                results["load"] = {"service": {}, "baseline": {}, "floor": {}}
                results["wal"] = warm_wal(db)
                results["wal"]["start_lsn"] = wal_lsn(db)
                results["wal"]["start_predictions"] = prediction_count(db)
                for c in levels:
                    # The service and the floor in alternating passes; each keeps its median
                    # pass (by throughput), so that one disturbed pass does not make the ratio.
                    # The plain variant, far slower, is played once (the first pass).
                    passes: dict[str, list[dict[str, Any]]] = {}
                    players = [("service", "api", api, url, True, args.rounds)]
                    if floor is not None:
                        players.append(("floor", "floor", floor, floor_url, False, args.rounds))
                    if baseline is not None:
                        players.append(("baseline", "baseline", baseline, base_url, True, 1))
                    for round_no in range(args.rounds):
                        for variant, name, served, served_url, counted, rounds in players:
                            if round_no >= rounds:
                                continue
                            waited = quiet(db) if variant == "floor" else 0.0
                            passes.setdefault(variant, []).append(
                                measure(
                                    name,
                                    served,
                                    served_url,
                                    c,
                                    args,
                                    records=counted,
                                    round_no=round_no,
                                )
                            )
                            passes[variant][-1]["quiet_wait_s"] = waited
                    for variant, done in passes.items():
                        results["load"][variant][str(c)] = median_pass(done)
                if floor is not None and "32" in results["load"]["floor"] and args.sustained_s > 0:
                    say(f"Régime établi : une passe de {args.sustained_s:.0f} s à concurrence 32…")
                    results["sustained"] = sustained_phase(
                        {"service": (api, url), "floor": (floor, floor_url)},
                        db,
                        args,
                        {
                            v: results["load"][v]["32"]["throughput_rps"]
                            for v in ("service", "floor")
                        },
                        functools.partial(measure, run_id=f"{run_id}-sustained"),
                    )
                if baseline is not None:
                    results["memory_baseline"] = memory(baseline)
                if floor is not None:
                    results["memory_floor"] = memory(floor)
            rest = settle(db)
            wal = results["wal"]
            wal["bytes"] = wal_lsn(db) - wal["start_lsn"]
            wal["predictions"] = prediction_count(db) - wal["start_predictions"]
            wal["bytes_per_prediction"] = wal["bytes"] / max(1, wal["predictions"])
            wal["covered"] = wal["bytes"] <= wal["segments"] * WAL_SEGMENT_BYTES
            results["batch"] = batch_phase(url, key, db, payloads, run_id, args)
            results["batch"]["settled"] = rest
            results["memory"] = memory(api)
            if args.profile:
                results["profile"] = profile_phase(api, url, key, workdir, run_id, args)
        results["machine"]["cpu_probe_end"] = cpu_probe()
    finally:
        if db is not None:
            db.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    import report

    # The ratios to the floor and the targets, as computed for the page, kept in the results.
    ratios = report.derived(results)
    results["floor_ratios"] = ratios["floor_ratios"]
    results["floor_targets"] = ratios["floor_targets"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    suffix = f"-{args.label}" if args.label else ""
    out = RESULTS / f"{day}-{results['commit']}{suffix}.json"
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    say(f"Résultats : {out.relative_to(ROOT)}")
    if not args.no_report:
        for path in report.render(out):
            say(f"Écrit : {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
