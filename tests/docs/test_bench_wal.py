"""The benchmark's steady state: PostgreSQL's log warmed, the floor measured at rest (bench/)."""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import text

from attrition.config import PROJECT_ROOT
from attrition.db.engine import Database

sys.path.insert(0, str(PROJECT_ROOT / "bench"))

import report
import run


def future_segments(database: Database) -> int:
    """Log files already there beyond the one being written: recycled, ready for reuse."""
    with database.connect(admin=True, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_ls_waldir() "
            "WHERE name ~ '^[0-9A-F]{24}$' AND name > pg_walfile_name(pg_current_wal_lsn())"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_warming_the_log_leaves_recycled_segments_ahead(database: Database) -> None:
    before = run.wal_lsn(database)
    warmed = run.warm_wal(database, segments=3)
    assert warmed["segments"] == 3 and "error" not in warmed
    # Three switches: the log position moved past at least two whole segments...
    assert run.wal_lsn(database) - before >= 2 * run.WAL_SEGMENT_BYTES
    # ...and the checkpoint left their files to be reused instead of created during a run.
    assert future_segments(database) >= 3


def test_the_floor_waits_for_the_services_sealing_queue(scratch: Database) -> None:
    # A database of its own: the session's holds what other tests left unsealed.
    with scratch.owner_engine().begin() as conn:
        conn.execute(text("CREATE TABLE predictions (id bigint PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE audit_pending (prediction_id bigint PRIMARY KEY)"))
        conn.execute(text("INSERT INTO predictions VALUES (1)"))
        conn.execute(text("INSERT INTO audit_pending VALUES (1), (2)"))  # 2: gone, skipped
    assert run.quiet(scratch, limit_s=0.3) >= 0.3  # a prediction to seal: waits to the limit
    with scratch.owner_engine().begin() as conn:
        conn.execute(text("DELETE FROM audit_pending WHERE prediction_id = 1"))  # sealed
    assert run.quiet(scratch, limit_s=5.0) < 2.0  # what is left is not the sealer's work


def test_the_page_says_how_the_log_was_treated() -> None:
    cold = report.wal_line(
        {"wal": {"segments": 0, "seconds": 0.0, "error": "InsufficientPrivilege"}}
    )
    assert "non préchauffé" in cold[0]
    warm = report.wal_line(
        {
            "wal": {
                "segments": 48,
                "seconds": 0.9,
                "bytes": 150 * 2**20,
                "predictions": 30000,
                "bytes_per_prediction": 150 * 2**20 / 30000,
                "covered": True,
            }
        }
    )
    assert "48 segments de 16 Mo recyclés (0,9 s)" in warm[0]
    assert "150 Mio de journal pour 30000 prédictions, soit 5,1 Kio par prédiction" in warm[0]
    assert "créés en cours" not in warm[0]
    assert "Plancher mesuré au calme" in warm[1]
    assert report.wal_line({}) == []  # runs of before 0.10.0


def test_the_long_pass_is_shown_with_its_ratios() -> None:
    def result(ok: int, wall_s: float, p50: float, p99: float) -> dict[str, Any]:
        return {
            "ok": ok,
            "wall_s": wall_s,
            "throughput_rps": ok / wall_s,
            "errors": 0,
            "latency_ms": {"p50": p50, "p99": p99},
        }

    service = {**result(36000, 8.0, 7.0, 14.0), "recorded": {"inputs": 36000, "outputs": 36000}}
    floor = result(120000, 8.0, 2.0, 5.6)
    lines = report.sustained_lines(
        {
            "sustained": {
                "seconds": 8.0,
                "service": service,
                "floor": floor,
                "ratio": (36000 / 8.0) / (120000 / 8.0),
                "p99_ratio": 14.0 / 5.6,
            }
        }
    )
    page = "\n".join(lines)
    assert "une passe de 8 s à concurrence 32" in page
    assert "| 4 500/s | 15 000/s | 30,0 % |" in page
    assert "| 14,00 ms | 5,60 ms | 2,5 × |" in page
    assert report.sustained_lines({}) == []  # runs without the long pass
