#!/usr/bin/env python3
"""Show the figures of `make image-smoke` in docs/deploiement.md.

``python scripts/image_smoke_report.py`` copies ``reports/image-smoke.json`` (written by
scripts/image_smoke.sh) to ``docs/exemples/image-smoke.json`` and rewrites the table between
the ``image-smoke:figures`` markers of docs/deploiement.md from it. A test keeps the page and
the committed JSON in step, so the page never shows a figure that was not measured.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT / "reports" / "image-smoke.json"
COMMITTED = ROOT / "docs" / "exemples" / "image-smoke.json"
PAGE = ROOT / "docs" / "deploiement.md"
START, END = "<!-- image-smoke:figures -->", "<!-- /image-smoke:figures -->"

#: (key in the JSON, label, unit) in the order of the scenario.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("moteur", "Moteur", ""),
    ("coeurs", "Cœurs de la machine", ""),
    ("base", "Image de base", ""),
    ("base_s", "Base prête (tirée, ou remplacement + index local)", "s"),
    ("construction_s", "Construction de l'image", "s"),
    ("image_mo", "Taille de l'image", "Mo"),
    ("premier_demarrage_pret_s", "Premier démarrage (Space) jusqu'à `/ready` 200", "s"),
    ("processus_space", "Processus de l'API (sans quota : les cœurs de la machine)", ""),
    ("redemarrage_pret_s", "`docker restart` jusqu'à `/ready` 200 (données gardées)", "s"),
    ("arret_s", "`docker stop` (SIGTERM)", "s"),
    ("arret_code", "Code de sortie à l'arrêt", ""),
    ("arret_premier_demarrage_s", "`docker stop` pendant l'entraînement du premier démarrage", "s"),
    ("arret_premier_demarrage_code", "Code de sortie de cet arrêt", ""),
    ("recuperation_apres_crash", "Récupération après incident au démarrage suivant", ""),
    ("reprise_pret_s", "Démarrage suivant jusqu'à `/ready` 200", "s"),
    ("demo_pret_s", "Démonstration éphémère jusqu'à `/ready` 200", "s"),
    ("sans_stockage_code", "Sans stockage ni drapeau : code de sortie", ""),
    ("data_root_code", "`/data` appartenant à root : code de sortie", ""),
    ("externe_sans_mot_de_passe_code", "Base externe sans mot de passe applicatif : code", ""),
    ("externe_pret_s", "Base externe : démarrage jusqu'à `/ready` 200", "s"),
    ("processus_cpus_1", "Processus de l'API avec `--cpus 1`", ""),
    ("healthcheck", "`HEALTHCHECK` de l'image avec `PORT=8080`", ""),
    ("externe_arret_s", "Base externe : `docker stop`", "s"),
    ("total_s", "Durée totale du script", "s"),
)


def _value(value: Any, unit: str) -> str:
    text = f"{value:.1f}".replace(".", ",") if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip()


def render(figures: dict[str, Any]) -> str:
    """The Markdown table of ``figures`` (keys missing from the run are left out)."""
    lines = [
        f"Mesuré le {figures.get('date', '?')}, statut « {figures.get('statut', '?')} » "
        "(machine partagée de l'équipe : les durées varient avec sa charge).",
        "",
        "| Étape | Mesure |",
        "| --- | --- |",
    ]
    lines += [
        f"| {label} | {_value(figures[k], unit)} |" for k, label, unit in ROWS if k in figures
    ]
    return "\n".join(lines)


def block(page: str) -> str:
    """The text between the markers of ``page``."""
    return page.split(START, 1)[1].split(END, 1)[0].strip("\n")


def main() -> int:
    if not MEASURED.is_file():
        print(f"{MEASURED} absent : lancez d'abord `make image-smoke`.", file=sys.stderr)
        return 1
    figures = json.loads(MEASURED.read_text(encoding="utf-8"))
    if figures.get("statut") != "reussi":
        print(f"Le dernier smoke test n'a pas réussi ({figures.get('statut')}).", file=sys.stderr)
        return 1
    shutil.copyfile(MEASURED, COMMITTED)
    page = PAGE.read_text(encoding="utf-8")
    before, rest = page.split(START, 1)
    after = rest.split(END, 1)[1]
    PAGE.write_text(f"{before}{START}\n{render(figures)}\n{END}{after}", encoding="utf-8")
    print(f"{PAGE.relative_to(ROOT)} et {COMMITTED.relative_to(ROOT)} mis à jour.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
