"""What bench/report.py says of sealing and verification rates as the trail grows."""

from __future__ import annotations

import sys
from typing import Any

from attrition.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bench"))

import report


def step(sealed: int, seal_rate: float, checked: int, verify_rate: float) -> dict[str, Any]:
    return {
        "fill": {"sealed": sealed, "seal_rows_per_s": seal_rate},
        "verify": {"checked": checked, "rows_per_s": verify_rate},
    }


def test_a_kept_rate_is_called_linear_and_a_falling_one_is_said() -> None:
    steps = [
        step(10_000, 50_000.0, 10_000, 9_000.0),  # below the floor: not compared
        step(990_000, 60_000.0, 1_000_000, 9_000.0),
        step(9_000_000, 10_000.0, 10_000_000, 8_000.0),
    ]
    sealing, verifying = report.rate_findings(steps)
    assert sealing.startswith("- **Scellement** : 990 000 lignes à 60 000/s, 9 000 000 lignes")
    assert "**le débit par ligne chute (rapport 0,17)" in sealing
    assert verifying.startswith("- **Vérification (débit)** : 1 000 000 lignes à 9 000/s")
    assert "se maintient (rapport 0,89) : le coût est linéaire" in verifying


def test_a_single_large_size_says_nothing_about_rates() -> None:
    assert report.rate_findings([step(10_000, 5.0, 10_000, 5.0), step(990_000, 1.0, 0, 0.0)]) == []


def test_the_purge_rate_is_compared_from_a_thousand_rows() -> None:
    steps = [step(0, 0.0, 0, 0.0), step(0, 0.0, 0, 0.0)]
    steps[0]["purge"] = {"predictions": 4_000, "rows_per_s": 50_000.0}
    steps[1]["purge"] = {"predictions": 100_000, "rows_per_s": 3_000.0}
    (purge,) = report.rate_findings(steps)
    assert purge.startswith("- **Purge (débit)** : 4 000 lignes à 50 000/s, 100 000 lignes à")
    assert "**le débit par ligne chute (rapport 0,06)" in purge
