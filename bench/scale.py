"""Cost as the audit trail grows: `make bench-scale` (10 k, 1 M, 10 M predictions by default).

Starts an embedded PostgreSQL in a temporary directory with the TechNova data, a trained model
and a `predicteur` key (as bench/run.py does), then fills the trail up to each size and
measures there:

* the fill itself, through the real write path: the records are scored once per employee by
  :class:`PredictionService` (the API's scoring and explanation), then written by the
  group-commit writer (:class:`GroupCommitWriter`, the very statement the API runs) in groups
  of up to 2,000, and sealed by :func:`attrition.db.chain.seal` (the API's background sealer);
  each row gets its own request id, and half of the rows name their employee;
* one employee's history (the API's `GET /v1/predictions?id_employee=` statement, a page of
  50) for a *probe* employee whose number of predictions does not grow with the trail, and
  for a *heavy* one who gets their share of every new row;
* a page of `GET /v1/predictions` deep in the list (keyset cursor near the oldest end);
* the GDPR export of the probe (`attrition rgpd export`'s function);
* `attrition audit verify`'s function, in a fresh process: seconds, rows/s, peak memory;
* drift over the last 30 days (`attrition monitor drift`'s function);
* the retention purge of the oldest 1 % (in a transaction rolled back, so the trail keeps its
  size for the next step; the final COMMIT is therefore not included);
* single-prediction throughput: `attrition serve` on that database under bench/load.py;
* the plans (`EXPLAIN`, default planner settings) of the per-employee reads and of the deep
  page, and the disk bytes per prediction (tables, indexes, TOAST, hash chain).

After each fill the two tables are analysed (`VACUUM (ANALYZE)`), as autovacuum would have
done on a live server. Writes bench/results/scale-<date>-<sha>.json; bench/report.py renders
its table into docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from attrition.db.chain import record_mac

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402 - bench/run.py: environment, embedded database, servers, load

ROOT = run.ROOT
RESULTS = run.RESULTS
say = run.say

TRAIL = ("prediction_inputs", "predictions")

#: Measures the audit verification in a fresh interpreter: time and peak memory of that
#: process alone, as `attrition audit verify` would see them.
VERIFY_CODE = """
import asyncio, os, resource, sys, time
import orjson, psycopg
from attrition.db import chain, verification
def high_water():
    # VmHWM: this process's own peak. ru_maxrss would also count the parent's memory at
    # the exec (Linux keeps the larger of the two), i.e. the bench's, not the verification's.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
async def main():
    async with await psycopg.AsyncConnection.connect(sys.argv[1]) as conn:
        before = high_water()
        started = time.perf_counter()
        key = chain.AuditKey.derive(os.environ["BENCH_AUDIT_KEY"])
        result = await verification.verify(conn, key)
        seconds = time.perf_counter() - started
        after = high_water()
    print(orjson.dumps({"seconds": seconds, "checked": result.checked, "ok": result.ok,
        "unsealed": result.unsealed, "breaks": len(result.breaks),
        "first_breaks": [b.describe() for b in result.breaks[:5]],
        "rss_before_mib": before, "peak_rss_mib": after}).decode())
asyncio.run(main())
"""


def timed(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "runs": len(values),
        "median_ms": statistics.median(values) * 1000,
        "min_ms": values[0] * 1000,
        "max_ms": values[-1] * 1000,
    }


async def repeat(work: Callable[[], Awaitable[Any]], times: int) -> tuple[dict[str, float], Any]:
    """Run ``work`` once to warm up, then ``times`` times; the timings and the last result."""
    result = await work()
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        result = await work()
        spent.append(time.perf_counter() - started)
    return timed(spent), result


class Trail:
    """Fills the trail through the API's scoring, writer and sealer, and measures it."""

    def __init__(
        self, db: Any, payloads: list[dict[str, Any]], args: argparse.Namespace, audit_key: str
    ) -> None:
        self.db = db
        self.audit_key = audit_key
        self.payloads = payloads
        self.args = args
        self.written = 0  # rows written by the filler
        self.probe_written = 0

    async def open(self) -> None:
        import psycopg
        from psycopg_pool import AsyncConnectionPool

        from attrition.db.engine import libpq_conninfo
        from attrition.db.writer import GroupCommitWriter
        from attrition.model.runtime import ModelRuntime
        from attrition.services.predictions import PredictionService, RequestContext, ScoreItem

        self.app_conninfo = libpq_conninfo(self.db.app_url)
        self.owner_conninfo = libpq_conninfo(self.db.owner_url)
        self.pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self.app_conninfo, min_size=2, max_size=4, open=False
        )
        await self.pool.open()
        self.owner = await psycopg.AsyncConnection.connect(self.owner_conninfo, autocommit=True)
        self.runtime = ModelRuntime()
        async with self.pool.connection() as conn:
            await self.runtime.refresh(conn, force=True)
        cur = await self.owner.execute("SELECT id FROM api_keys WHERE name = 'bench'")
        key_row = await cur.fetchone()
        self.key_id = key_row[0] if key_row else None
        cur = await self.owner.execute("SELECT id_employee FROM employees ORDER BY id_employee")
        self.ids = [r[0] for r in await cur.fetchall()]
        # The payloads of bench/run.py are the employees' features in id order.
        assert len(self.ids) == len(self.payloads)
        self.probe, self.heavy = self.ids[0], self.ids[1]
        model = self.runtime.require()
        from attrition.db.chain import AuditKey

        self.key = AuditKey.derive(self.audit_key)
        service = PredictionService(self.pool, self.runtime, audit_key=self.key)
        items = [ScoreItem(dict(p), None, dict(p)) for p in self.payloads]
        ctx = RequestContext(request_id="scale", api_key_id=self.key_id, source="api")
        # One scoring per employee, by the API's own code; each row below is one of these.
        self.templates = [
            dataclasses.replace(r, batch_id=None, batch_row=0)
            for r in service._score(model, items, ctx)
        ]
        self.writer = GroupCommitWriter(self.pool, max_records=2000)
        await self.writer.start()

    async def close(self) -> None:
        await self.writer.close()
        await self.owner.close()
        await self.pool.close()

    def record(self, n: int, probe_every: int) -> Any:
        index = n % len(self.templates)
        template = self.templates[index]
        employee: int | None = self.ids[index]
        if probe_every and n % probe_every == 0:
            employee = self.probe
            self.probe_written += 1
            template = self.templates[0]
        elif employee == self.probe or (n * 2654435761) % 1000 >= 1000 * self.args.linked_share:
            employee = None
        payload = (
            template.payload if employee is None else {**template.payload, "id_employee": employee}
        )
        out = dataclasses.replace(
            template, request_id=f"scale-{n}", id_employee=employee, payload=payload
        )
        # Signed again, as the service signs what it answered: the template's MAC covers
        # another request id (verify would rightly call every row modified).
        out.record_mac = record_mac(self.key, out.mac_values())
        return out

    async def fill(self, target: int) -> dict[str, Any]:
        """Write rows until the trail holds ``target`` predictions; then seal and analyse."""
        from attrition.db import chain

        count = await self.count()
        todo = max(0, target - count)
        # The probe's rows all go into the first size, spread over it.
        probe_every = (
            max(1, todo // self.args.probe_records) if self.probe_written == 0 and todo else 0
        )
        started = time.perf_counter()
        pending: set[asyncio.Task[Any]] = set()
        chunk = self.args.chunk
        shown = time.perf_counter()
        done = 0
        while done < todo:
            size = min(chunk, todo - done)
            if probe_every and self.probe_written >= self.args.probe_records:
                probe_every = 0
            batch = [self.record(self.written + k, probe_every) for k in range(size)]
            self.written += size
            done += size
            pending.add(asyncio.create_task(self.writer.write(batch)))
            if len(pending) >= 4:
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    task.result()
            if time.perf_counter() - shown > 15:
                shown = time.perf_counter()
                rate = done / (shown - started)
                say(f"  {done:,}/{todo:,} lignes écrites ({rate:,.0f}/s)")
        for task in pending:
            await task
        fill_s = time.perf_counter() - started
        started = time.perf_counter()
        sealed = 0
        while True:
            n, _ = await chain.seal(
                self.owner, chain.AuditKey.derive(self.audit_key), limit=20_000, wait=True
            )
            sealed += n
            if n == 0:
                break
        seal_s = time.perf_counter() - started
        started = time.perf_counter()
        for table in TRAIL:
            await self.owner.execute(f"VACUUM (ANALYZE) {table}")
        vacuum_s = time.perf_counter() - started
        return {
            "rows_written": todo,
            "fill_s": fill_s,
            "fill_rows_per_s": todo / fill_s if fill_s else None,
            "sealed": sealed,
            "seal_s": seal_s,
            "seal_rows_per_s": sealed / seal_s if seal_s and sealed else None,
            "vacuum_analyze_s": vacuum_s,
        }

    async def count(self) -> int:
        cur = await self.owner.execute("SELECT count(*) FROM predictions")
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def measure(self) -> dict[str, Any]:
        from attrition.db import audit
        from attrition.db.plans import scans, sequential, sorts
        from attrition.monitoring.drift import drift_report
        from attrition.services.records import export_employee

        out: dict[str, Any] = {"predictions": await self.count()}
        reps = self.args.repeats
        probe = audit.PredictionFilter(id_employee=self.probe)
        heavy = audit.PredictionFilter(id_employee=self.heavy)
        # A cursor names the arrival (input id) of the last row shown.
        cur = await self.owner.execute(
            "SELECT input_id FROM predictions ORDER BY input_id OFFSET %s LIMIT 1",
            (out["predictions"] // 10,),
        )
        deep_row = await cur.fetchone()
        deep = deep_row[0] if deep_row else None
        cur = await self.owner.execute(
            "SELECT count(*) FILTER (WHERE id_employee = %s), "
            "count(*) FILTER (WHERE id_employee = %s) FROM prediction_inputs",
            (self.probe, self.heavy),
        )
        counts = await cur.fetchone()
        assert counts is not None
        out["probe_predictions"], out["heavy_predictions"] = int(counts[0]), int(counts[1])

        async with self.pool.connection() as conn:

            def page(flt: Any, after: int | None) -> Callable[[], Awaitable[Any]]:
                return lambda: audit.list_predictions(conn, flt, after=after, limit=51)

            out["history_probe"], rows = await repeat(page(probe, None), reps)
            out["history_probe"]["rows"] = len(rows)
            out["history_heavy"], rows = await repeat(page(heavy, None), reps)
            out["history_heavy"]["rows"] = len(rows)
            out["deep_page"], rows = await repeat(page(audit.PredictionFilter(), deep), reps)
            out["deep_page"]["rows"] = len(rows)
            out["deep_page"]["after_id"] = deep
            plans = {}
            for name, flt, after, limit in (
                ("history", probe, None, 51),
                ("history_heavy", heavy, None, 51),
                ("export", probe, None, 1_000_000),
                ("export_heavy", heavy, None, 1_000_000),
                ("deep_page", audit.PredictionFilter(), deep, 51),
            ):
                found = await scans(conn, *audit.list_query(flt, after=after, limit=limit))
                plans[name] = {
                    "scans": [[s.node, s.relation, s.index] for s in found],
                    "index_backed": not sequential(found, TRAIL),
                    "sorts": sorts(found),
                }
            out["plans"] = plans
            since = datetime.now(UTC) - timedelta(days=30)
            model = self.runtime.current
            out["drift_30d"], report = await repeat(
                lambda: drift_report(conn, since=since, model=model), max(1, reps // 5)
            )
            out["drift_30d"]["rows"] = report.n_recent
            out["drift_30d"]["rows_per_s"] = (
                report.n_recent / (out["drift_30d"]["median_ms"] / 1000)
                if report.n_recent
                else None
            )

        out["gdpr_export"], data = await repeat(
            lambda: export_employee(self.owner, self.probe), reps
        )
        out["gdpr_export"]["rows"] = len(data["predictions"])
        limit = self.args.verify_max_rows
        if limit and out["predictions"] > limit:
            # A cap for a machine too slow to read the trail in the time at hand; the
            # verification streams (memory bounded), so memory is no longer the reason.
            out["verify"] = {"skipped": True, "reason": f"trace au-delà de {limit} lignes"}
        else:
            out["verify"] = self.verify()
        out["purge"] = await self.purge(out["predictions"])
        out["disk"] = await self.disk(out["predictions"])
        return out

    def verify(self) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-c", VERIFY_CODE, self.owner_conninfo],
            env={**os.environ, "BENCH_AUDIT_KEY": self.audit_key},
            capture_output=True,
            text=True,
            check=False,
            timeout=3600,
        )
        if done.returncode != 0:
            # Killed for lack of memory, typically: recorded, and the run goes on.
            say(f"  vérification en échec (code {done.returncode}) : {done.stderr[-300:]}")
            return {"failed": True, "returncode": done.returncode, "stderr": done.stderr[-2000:]}
        result = orjson.loads(done.stdout.strip().splitlines()[-1])
        result["rows_per_s"] = result["checked"] / result["seconds"] if result["seconds"] else None
        return result

    async def purge(self, total: int) -> dict[str, Any]:
        """Purge the oldest ``purge_share`` of the trail, timed, then roll it back."""
        from attrition.db.retention import purge

        cur = await self.owner.execute(
            "SELECT created_at FROM predictions ORDER BY id OFFSET %s LIMIT 1",
            (max(1, int(total * self.args.purge_share)),),
        )
        row = await cur.fetchone()
        if row is None:
            return {}
        # The rows of one write share its transaction's now(): the cutoff just after that
        # instant purges whole groups, so the count purged is reported, not assumed.
        cutoff = row[0] + timedelta(microseconds=1)
        async with self.owner.transaction(force_rollback=True):
            started = time.perf_counter()
            report = await purge(self.owner, cutoff)
            seconds = time.perf_counter() - started
        return {
            "predictions": report.predictions,
            "seconds": seconds,
            "rows_per_s": report.predictions / seconds if seconds and report.predictions else None,
            "rolled_back": True,
        }

    async def disk(self, total: int) -> dict[str, Any]:
        tables = {}
        for table in (*TRAIL, "audit_chain"):
            cur = await self.owner.execute(
                "SELECT pg_relation_size(%s), pg_indexes_size(%s), pg_total_relation_size(%s)",
                (table, table, table),
            )
            heap, indexes, whole = await cur.fetchone()  # type: ignore[misc]
            tables[table] = {"heap": heap, "indexes": indexes, "total": whole}
        every = sum(t["total"] for t in tables.values())
        return {
            "tables": tables,
            "total_bytes": every,
            "bytes_per_prediction": every / total if total else None,
        }


def throughput(
    db: Any, env: dict[str, str], key: str, workdir: Path, run_id: str, size: int, args: Any
) -> dict[str, Any]:
    """Single predictions at concurrency ``--concurrency`` against `attrition serve`."""
    port = run.free_port()
    url = f"http://127.0.0.1:{port}"
    api = run.Service("api", run.serve_argv(port, args.workers), env, workdir / f"serve-{size}.log")
    with run.started(api):
        api.wait_ready(url)
        api.wait_log("service prêt", args.workers)
        prefix = f"{run_id}-scale-{size}"
        result = run.load(
            url,
            key,
            workdir / "payloads.json",
            concurrency=args.concurrency,
            requests=args.requests,
            prefix=prefix,
            args=args,
        )
    result.pop("cpu_s", None)
    result["recorded"] = run.recorded(db, prefix)
    return result


def write_csv(path: Path, payloads: list[dict[str, Any]], rows: int) -> int:
    """A CSV file of ``rows`` employees (the dataset's, in turn) with the API's field names."""
    import csv

    names = list(payloads[0])
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=names)
        writer.writeheader()
        for n in range(rows):
            writer.writerow(payloads[n % len(payloads)])
    return path.stat().st_size


def high_water(pid: int) -> float:
    """A process's peak resident memory so far (``VmHWM``), in MiB; 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def predict_file(
    db: Any, env: dict[str, str], payloads: list[dict[str, Any]], workdir: Path, rows: int
) -> dict[str, Any]:
    """`attrition predict --file` on a generated CSV: seconds, rows/s and peak memory."""
    path = workdir / f"employes-{rows}.csv"
    size = write_csv(path, payloads, rows)
    child_env = {
        **env,
        "DATABASE_URL": db.owner_dsn,
        # The application role's password, as `attrition serve` hands it to its workers.
        "ATTRITION_DB__APP_PASSWORD": db.app_password or "",
    }
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink, (workdir / f"predict-{rows}.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(run.BIN / "attrition"), "predict", "--file", str(path), "--json"],
            env=child_env,
            stdout=sink,
            stderr=log,
        )
        peak = 0.0
        while True:
            # The child's own peak (VmHWM), read until it exits: its ru_maxrss would also
            # count this process's memory at the exec (Linux keeps the larger of the two).
            peak = max(peak, high_water(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.1)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    path.unlink()
    return {
        "rows": rows,
        "file_bytes": size,
        "exit_code": proc.returncode,
        "seconds": seconds,
        "rows_per_s": rows / seconds if proc.returncode == 0 else None,
        "peak_rss_mib": peak,
        "peak_rss_sampled_every_s": 0.1,
        # CPU of the command alone: on a shared machine, less disturbed than the wall time.
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


#: Bytes per prediction assumed before any size is measured (measured: about 3,700).
DEFAULT_BYTES_PER_PREDICTION = 4000
#: Room for the WAL (``max_wal_size``) and temporary files during a fill.
DISK_MARGIN = 2 * 2**30


def disk_room(
    workdir: Path, size: int, done: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """Whether filling the trail up to ``size`` leaves ``--min-free-gb`` free on the disk.

    The need is the rows still to write times the bytes per prediction measured at the
    previous size (10 % more for the indexes' slack), plus room for the WAL.
    """
    measured = [s["disk"]["bytes_per_prediction"] for s in done if s.get("disk")]
    per_row = measured[-1] if measured else DEFAULT_BYTES_PER_PREDICTION
    have = done[-1]["predictions"] if done else 0
    need = int(max(0, size - have) * per_row * 1.1 + DISK_MARGIN)
    free = shutil.disk_usage(workdir).free
    return {
        "target": size,
        "free_bytes": free,
        "bytes_per_prediction": per_row,
        "need_bytes": need,
        "min_free_bytes": int(args.min_free_gb * 1e9),
        "fits": free - need >= args.min_free_gb * 1e9,
    }


def save(results: dict[str, Any], args: argparse.Namespace) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = f"-{args.label}" if args.label else ""
    out = RESULTS / f"scale-{results['date'][:10]}-{results['commit']}{suffix}.json"
    out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="Coût quand la trace grandit (make bench-scale).")
    parser.add_argument(
        "--sizes", default="10000,1000000,10000000", help="tailles de la trace, croissantes"
    )
    parser.add_argument(
        "--probe-records", type=int, default=50, help="prédictions de l'employé témoin"
    )
    parser.add_argument(
        "--linked-share", type=float, default=0.5, help="part des lignes qui nomment l'employé"
    )
    parser.add_argument("--chunk", type=int, default=1000, help="lignes par écriture")
    parser.add_argument("--repeats", type=int, default=20, help="mesures par lecture")
    parser.add_argument("--purge-share", type=float, default=0.01, help="part purgée (annulée)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="requêtes du débit unitaire")
    parser.add_argument("--max-seconds", type=float, default=45.0)
    parser.add_argument(
        "--predict-rows",
        default="100000,1000000",
        help="lignes des fichiers CSV passés à `attrition predict --file` (vide : aucun)",
    )
    parser.add_argument(
        "--verify-max-rows",
        type=int,
        default=0,
        help="ne pas lancer la vérification au-delà de cette taille (0 : toujours)",
    )
    parser.add_argument(
        "--min-free-gb",
        type=float,
        default=10.0,
        help="ne pas remplir une taille qui laisserait moins d'espace disque libre (Go)",
    )
    parser.add_argument("--keep", action="store_true", help="garder le dossier temporaire")
    parser.add_argument("--label", default="", help="suffixe du fichier de résultats")
    parser.add_argument("--no-report", action="store_true", help="ne pas régénérer la doc")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())

    workdir = Path(tempfile.mkdtemp(prefix="attr-scale-", dir="/tmp"))
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "ATTRITION_DATABASE_URL"}
    }
    env.update(
        APP_ENV="dev",
        ATTRITION_PGDATA=str(workdir / "pgdata"),
        ATTRITION_DATA_DIR=str(run.data_dir()),
        ATTRITION_MODEL_DIR=str(workdir / "models"),
        **run.LIMITS_ENV,
    )
    os.environ.update({k: env[k] for k in env if k.startswith(("ATTRITION_", "APP_"))})
    os.environ.pop("DATABASE_URL", None)

    from attrition.config import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    run_id = "s" + datetime.now(UTC).strftime("%H%M%S")
    results: dict[str, Any] = {
        "kind": "scale",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": run.git_short_sha(),
        "machine": {**run.machine(), "cpu_probe_start": run.cpu_probe()},
        "config": {k: v for k, v in vars(args).items() if k not in {"keep", "no_report"}},
        "sizes": [],
    }
    say(f"Dossier de travail : {workdir}")
    db = None
    started_all = time.perf_counter()
    try:
        db, version, key, payloads = run.prepare(settings, workdir)
        results["config"]["model_version"] = version
        from attrition.security.secrets import audit_key_text

        trail = Trail(db, payloads, args, audit_key_text(settings))

        async def fill_and_measure(size: int) -> dict[str, Any]:
            await trail.open()
            try:
                step: dict[str, Any] = {"target": size, "fill": await trail.fill(size)}
                step.update(await trail.measure())
                return step
            finally:
                await trail.close()

        for size in sizes:
            room = disk_room(workdir, size, results["sizes"], args)
            if not room["fits"]:
                results.setdefault("not_run", []).append(room)
                save(results, args)
                say(
                    f"Trace à {size:,} prédictions non remplie : {room['free_bytes'] / 1e9:.1f} Go "
                    f"libres, il en faudrait environ {room['need_bytes'] / 1e9:.1f} "
                    f"({room['bytes_per_prediction']:,.0f} octets/prédiction), et "
                    f"{args.min_free_gb:.0f} Go doivent rester libres."
                )
                continue
            say(f"Trace à {size:,} prédictions…")
            step = asyncio.run(fill_and_measure(size))
            step["throughput"] = throughput(db, env, key, workdir, run_id, size, args)
            results["sizes"].append(step)
            save(results, args)  # a later size that fails keeps the earlier ones
            t = step["throughput"]
            say(
                f"  {step['predictions']:,} prédictions ; historique témoin "
                f"{step['history_probe']['median_ms']:.2f} ms, lourd "
                f"{step['history_heavy']['median_ms']:.2f} ms ({step['heavy_predictions']} "
                f"lignes), page profonde {step['deep_page']['median_ms']:.2f} ms, export RGPD "
                f"{step['gdpr_export']['median_ms']:.2f} ms, vérification "
                f"{step['verify'].get('rows_per_s') or 0:,.0f} lignes/s, dérive "
                f"{step['drift_30d']['median_ms']:.0f} ms, purge "
                f"{step['purge'].get('seconds', 0):.2f} s, "
                f"{step['disk']['bytes_per_prediction']:,.0f} octets/prédiction, débit "
                f"{t['throughput_rps']:.0f} req/s"
            )
        files = [int(n) for n in args.predict_rows.split(",") if n.strip()]
        if files:
            results["predict_file"] = []
        for rows in files:
            say(f"attrition predict --file : {rows:,} lignes…")
            done = predict_file(db, env, payloads, workdir, rows)
            results["predict_file"].append(done)
            save(results, args)
            say(
                f"  {done['seconds']:.1f} s, {done['rows_per_s'] or 0:,.0f} lignes/s, mémoire de "
                f"pointe {done['peak_rss_mib']:.0f} Mio (code {done['exit_code']})"
            )
        results["machine"]["cpu_probe_end"] = run.cpu_probe()
        results["total_s"] = time.perf_counter() - started_all
    finally:
        if db is not None:
            db.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    out = save(results, args)
    say(f"Résultats : {out.relative_to(ROOT)}")
    if not args.no_report:
        import report

        for path in report.render(report.latest_results()):
            say(f"Écrit : {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
