"""docs/fiabilite.md is generated from the figures, and from a full run (`make soak`)."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

from attrition.config import PROJECT_ROOT


def _report() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "reliability_report", PROJECT_ROOT / "scripts" / "reliability_report.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAMPLE: dict[str, Any] = {
    "fuzzing": {"commande": "make soak", "date": "2026-01-31T10:00:00+00:00", "cas_executes": 2345, "echecs": 0},
    "charge": {"commande": "make soak", "date": "2026-01-31T10:05:00+00:00", "requetes": 2000, "enregistrements_perdus": 0, "debit_par_s": 81.25},
    "pannes": [
        {"panne": "A", "injection": "x | y", "attendu": "z", "survecue": True, "mesure": "ok", "commande": "make soak"},
        {"panne": "B", "injection": "x", "attendu": "z", "survecue": False, "mesure": None, "commande": "make soak"},
    ],
}  # fmt: skip


def test_the_page_says_what_was_measured_and_how_to_regenerate_it() -> None:
    page = _report().render(SAMPLE)
    assert "**`make soak`**" in page and "scripts/reliability_report.py" in page
    assert "| Cas de fuzzing exécutés (Schemathesis) | 2\u202f345 |" in page
    assert "| Requêtes sous charge (32 clients simultanés) | 2\u202f000 |" in page
    assert "| Débit (requêtes/s, un processus) | 81,25 |" in page
    assert "| Pannes injectées | 2 |" in page and "| … surmontées | 1 |" in page
    assert "**ÉCHEC**" in page and "x \\| y" in page
    assert "| Entrées invalides essayées (catalogue) | non mesuré |" in page
    assert "_Mesuré par `make soak` le 2026-01-31 10:00:00 UTC._" in page


def test_the_committed_page_is_generated_from_a_full_run() -> None:
    report = _report()
    page = (PROJECT_ROOT / "docs" / "fiabilite.md").read_text(encoding="utf-8")
    figures = report.embedded_figures(page)
    assert report.render(figures) == page, "docs/fiabilite.md edited by hand: run `make soak`"
    for section in ("fuzzing", "proprietes", "entrees_invalides", "charge", "crash", "inondation"):
        assert figures[section]["commande"] == "make soak", section
    assert figures["fuzzing"]["exemples_par_operation"] == 200
    assert figures["fuzzing"]["echecs"] == 0
    assert figures["charge"]["requetes"] == 2000
    assert figures["charge"]["enregistrements_perdus"] == 0
    crash = figures["crash"]
    assert crash["doublons"] == crash["entrees_sans_sortie"] == crash["enregistrements_perdus"] == 0
    assert figures["entrees_invalides"]["cas"] == figures["entrees_invalides"]["tracees_une_fois"]
    assert figures["pannes"] and all(f["survecue"] for f in figures["pannes"])
