"""The benchmark's floor app and its ratios (bench/floor_app.py, bench/report.py)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bench"))

import floor_app
import report


def test_the_floor_validates_the_project_schema_and_replies_a_constant() -> None:
    client = TestClient(floor_app.create_app())
    ok = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE)
    assert ok.status_code == 201 and ok.content == floor_app.REPLY
    assert client.post("/v1/predictions", json={**EXAMPLE_EMPLOYEE, "age": 12}).status_code == 422
    assert client.post("/v1/predictions", json={**EXAMPLE_EMPLOYEE, "age": "41"}).status_code == 422
    assert client.get("/ready").json() == {"statut": "pret"}


def level(rps: float, p50: float, p99: float, recorded: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ok": 1000,
        "wall_s": 1000 / rps,
        "throughput_rps": rps,
        "errors": 0,
        "latency_ms": {"p50": p50, "p95": p99, "p99": p99, "max": p99},
    }
    if recorded is not None:
        out.update(recorded={"inputs": recorded, "outputs": recorded}, lost=0, orphans=0)
    return out


def run(service_c32: float, recorded_c32: int, batch_rows_per_s: float) -> dict[str, Any]:
    return {
        "load": {
            "service": {
                "1": level(250, 4, 8, 1000),
                "32": level(service_c32, 60, 90, recorded_c32),
            },
            "baseline": {"1": level(50, 20, 40, 1000), "32": level(60, 400, 800, 1000)},
            "floor": {"1": level(1000, 1, 2), "32": level(2000, 15, 25)},
        },
        "batch": {"size": 1000, "rows_per_s": batch_rows_per_s, "median_ms": 100},
        "startup": {},
    }


def test_ratios_and_targets_are_computed_from_the_run() -> None:
    d = report.derived(run(800, 1000, 3000))
    q = d["floor_ratios"]["32"]
    assert q["service"] == pytest.approx(0.4) and q["baseline"] == pytest.approx(0.03)
    assert q["p99"] == pytest.approx(90 / 25)
    assert d["floor_ratios"]["1"]["service"] == pytest.approx(0.25)
    values = [(t["value"], t["met"]) for t in d["floor_targets"]]
    assert values[0] == (pytest.approx(40.0), True)  # recorded at c=32: 40 % of the floor
    assert values[1] == (pytest.approx(25.0), True)  # c=1: 25 % of the floor
    assert values[2] == (pytest.approx(3.6), False)  # p99: 3.6 × the floor's
    assert values[3] == (pytest.approx(12.0), True)  # batch: 3,000 rows/s over 250/s


def test_what_was_not_recorded_does_not_count_and_misses_are_misses() -> None:
    d = report.derived(run(800, 500, 2000))
    values = [(t["value"], t["met"]) for t in d["floor_targets"]]
    assert values[0] == (pytest.approx(20.0), False)  # 500 of 1,000 recorded
    assert values[3] == (pytest.approx(8.0), False)


def test_without_a_floor_nothing_is_claimed() -> None:
    r = run(800, 1000, 3000)
    del r["load"]["floor"]
    d = report.derived(r)
    assert d["floor_ratios"] == {}
    assert [t["met"] for t in d["floor_targets"]] == [None, None, None, True]


def test_a_short_or_disturbed_run_is_flagged_first() -> None:
    r = run(800, 1000, 3000)
    r["config"] = {"requests_per_level": 5000}
    assert report.noise_warning(r) == []
    r["load"]["service"]["32"].update(other_cpu_s=3.0, machine_capacity_s=10.0)
    r["config"]["requests_per_level"] = 500
    (line, blank) = report.noise_warning(r)
    assert "500 requêtes par palier" in line and "jusqu'à 30 %" in line and blank == ""


def test_each_level_keeps_its_median_pass_and_lists_them_all() -> None:
    import run

    passes = [level(300.0, 9.0, 20.0), level(100.0, 30.0, 60.0), level(200.0, 15.0, 30.0)]
    chosen = run.median_pass(passes)
    assert chosen["throughput_rps"] == 200.0 and chosen["latency_ms"]["p99"] == 30.0
    assert [p["throughput_rps"] for p in chosen["passes"]] == [300.0, 100.0, 200.0]
    assert run.median_pass(passes[:2])["throughput_rps"] == 100.0  # the lower middle one
    assert "3 passes" in report.rounds_note({"rounds_per_level": 3})
    assert report.rounds_note({"requests_per_level": 5000}) == ""  # results of before 0.7.0
