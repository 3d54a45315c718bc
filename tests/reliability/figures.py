"""Figures measured by the reliability tests, merged into ``reports/fiabilite.json``.

Each test records what it ran and what it found (cases, rejections, faults survived, rows
lost); at the end of the session the figures are merged into the JSON file section by section,
so a targeted run refreshes its own sections and keeps the others. ``scripts/reliability_report.py``
renders ``docs/fiabilite.md`` from that file: no figure of the page is typed by hand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attrition.config import PROJECT_ROOT

REPORT = PROJECT_ROOT / "reports" / "fiabilite.json"


def run_command() -> str:
    """The command that runs the tests (set by `make fuzz` / `make soak`; `make test` otherwise)."""
    return os.environ.get("ATTRITION_RELIABILITY_RUN", "make test")


def fr(value: float, unit: str = "", digits: int = 2) -> str:
    """A figure for a French sentence: 2 000 ; 1,25 s."""
    if isinstance(value, int):
        text = f"{value:,}".replace(",", "\u202f")
    else:
        text = f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")
    return f"{text} {unit}" if unit else text


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class Figures:
    """Sections of figures (dicts) and faults (by name) recorded during one test session."""

    def __init__(self) -> None:
        self.sections: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, dict[str, Any]] = {}

    def section(self, name: str, **values: Any) -> dict[str, Any]:
        """Set ``values`` in section ``name`` (created with the command and the date)."""
        section = self.sections.setdefault(name, {"commande": run_command(), "date": now()})
        section.update(values)
        return section

    def add(self, name: str, key: str, amount: int = 1) -> None:
        section = self.section(name)
        section[key] = section.get(key, 0) + amount

    @contextmanager
    def fault(self, name: str, injected: str, expected: str) -> Iterator[dict[str, Any]]:
        """Record a fault injection; it counts as survived only if the block completes."""
        record: dict[str, Any] = {
            "panne": name,
            "injection": injected,
            "attendu": expected,
            "survecue": False,
            "mesure": None,
            "commande": run_command(),
            "date": now(),
        }
        self.faults[name] = record
        yield record
        record["survecue"] = True

    def merge_into(self, path: Path = REPORT) -> dict[str, Any]:
        """Merge this session's figures into ``path`` and return the merged document."""
        document: dict[str, Any] = {}
        if path.is_file():
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                document = {}
        for name, values in self.sections.items():
            document[name] = values
        if self.faults:
            faults = {f["panne"]: f for f in document.get("pannes", [])}
            faults.update(self.faults)
            document["pannes"] = sorted(faults.values(), key=lambda f: f["panne"])
        document["mis_a_jour"] = now()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        return document
