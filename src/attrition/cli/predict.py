"""``attrition predict`` and ``attrition predictions``: list, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from attrition import wording
from attrition.cli.common import (
    console,
    database,
    domain_errors,
    err,
    load_settings,
    say,
    with_connection,
)

predictions_app = typer.Typer(
    help="Prédictions enregistrées : lister, exporter.", no_args_is_help=True
)


def predict_command(
    employee_id: Annotated[
        int | None, typer.Option("--employee-id", help="Employé enregistré à évaluer.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="CSV d'employés (noms de champs de l'API).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Sortie JSON.")] = False,
) -> None:
    """Prédit pour un employé enregistré ou un fichier CSV ; tout est enregistré en base.

    Un fichier est d'abord validé en entier (rien n'est enregistré si une ligne est invalide),
    puis lu et traité par lots de 1 000 lignes, chacun enregistré puis affiché avant le
    suivant : la mémoire ne grandit pas avec la longueur du fichier.
    """
    import asyncio

    from attrition.cli.offline import predict_file, predict_offline

    if (employee_id is None) == (file is None):
        err.print("[bold red]Erreur :[/] donnez soit --employee-id, soit --file.")
        raise typer.Exit(2)
    settings = load_settings()
    show = _JsonOutput() if as_json else _TableOutput()
    with database(settings) as db, domain_errors():
        if file is not None:
            asyncio.run(predict_file(db, settings, file, show))
        else:
            show(asyncio.run(predict_offline(db, settings, employee_id=employee_id)))
    show.close()


class _JsonOutput:
    """A JSON array written as the outcomes come, one chunk at a time."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, outcomes: list[Any]) -> None:
        for o in outcomes:
            text = json.dumps(o.as_response(), ensure_ascii=False, default=str, indent=2)
            sys.stdout.write(("[\n" if self.count == 0 else ",\n") + text)
            self.count += 1
        sys.stdout.flush()

    def close(self) -> None:
        sys.stdout.write(("[" if self.count == 0 else "\n") + "]\n")


class _TableOutput:
    """One table per chunk of outcomes, then how to read them (one score, or the count flagged)."""

    def __init__(self) -> None:
        self.count = 0
        self.flagged = 0
        self.threshold: float | None = None
        self.first: Any = None

    def __call__(self, outcomes: list[Any]) -> None:
        table = Table("prédiction", "employé", "probabilité", "niveau", "principal facteur")
        for o in outcomes:
            up = o.explanation["facteurs_hausse"]
            table.add_row(
                str(o.prediction_id),
                str(o.id_employee or "-"),
                wording.percent(o.probability),
                o.reading().libelle,
                _factor_text(up[0]) if up else "-",
            )
            self.first = self.first if self.count else o
            self.count += 1
            self.flagged += o.label == "depart"
            self.threshold = o.threshold
        console.print(table)

    def close(self) -> None:
        if self.count == 1:
            console.print(self.first.reading().texte)
            explanation = self.first.explanation
            factors = [*explanation["facteurs_hausse"], *explanation["facteurs_baisse"]]
            if factors:
                console.print("Facteurs qui expliquent la probabilité :")
            for factor in sorted(factors, key=lambda f: f["contribution"], reverse=True):
                console.print(f"- {_factor_text(factor)}", markup=False, highlight=False)
        elif self.count and self.threshold is not None:
            console.print(
                f"{self.flagged} employé(s) sur {self.count} au-dessus du seuil d'alerte "
                f"({wording.percent(self.threshold)}) : {wording.DECISION_LABELS['depart']}."
            )


def _factor_text(factor: dict[str, Any]) -> str:
    """A factor as the web result page words it: plain label, value, effect."""
    from attrition.model.features import plain_factor

    label, value = plain_factor(factor["variable"], factor["valeur"], factor.get("libelle"))
    return wording.factor_line(label, value, factor["contribution"])


def _recorded_rows(since: str | None, until: str | None, limit: int) -> list[dict[str, Any]]:
    import asyncio
    from datetime import datetime

    from attrition.services import records

    def when(text: str | None) -> datetime | None:
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            err.print(f"[bold red]Erreur :[/] date invalide « {text} » (format ISO 8601).")
            raise typer.Exit(2) from None

    query = records.HistoryQuery(since=when(since), until=when(until))
    with database() as db:
        page = asyncio.run(
            with_connection(
                db, lambda c: records.list_predictions(c, None, query, after=None, limit=limit)
            )
        )
    return page.predictions


@predictions_app.command("list")
def predictions_list(
    since: Annotated[str | None, typer.Option("--since", help="Depuis (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Jusqu'à (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="Nombre au plus.")] = 50,
) -> None:
    """Liste les dernières prédictions enregistrées."""
    table = Table(
        "id", "horodatage", "source", "client", "employé", "probabilité", "signalement", "version"
    )
    for r in _recorded_rows(since, until, limit):
        table.add_row(
            str(r["prediction_id"]),
            f"{r['horodatage']:%Y-%m-%d %H:%M:%S}",
            r["source"],
            r["client"] or "cli",
            str(r["id_employee"] or "-"),
            wording.percent(r["probabilite_depart"]),
            wording.DECISION_LABELS.get(r["prediction"], r["prediction"]),
            r["model_version"],
        )
    console.print(table)


@predictions_app.command("export")
def predictions_export(
    fmt: Annotated[str, typer.Option("--format", help="csv ou json.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Fichier de sortie.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="Depuis (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Jusqu'à (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(help="Nombre au plus.")] = 10_000,
) -> None:
    """Exporte les prédictions avec leurs entrées (CSV ou JSON)."""
    import csv
    import io

    from attrition.cli.offline import EXPORT_COLUMNS

    if fmt not in {"csv", "json"}:
        err.print("[bold red]Erreur :[/] --format doit valoir csv ou json.")
        raise typer.Exit(2)
    rows = _recorded_rows(since, until, limit)
    if fmt == "json":
        text = json.dumps(rows, ensure_ascii=False, default=str, indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            flat = {**r, **r["entree"], "client": r["client"] or "cli"}
            writer.writerow({k: flat.get(k) for k in EXPORT_COLUMNS})
        text = buffer.getvalue()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        say(f"{len(rows)} prédiction(s) exportée(s) dans {output}")
