"""``attrition predict`` and ``attrition predictions``: list, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

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
    """Prédit pour un employé enregistré ou un fichier CSV ; tout est enregistré en base."""
    import asyncio

    from attrition.cli.offline import predict_offline, read_employee_file

    if (employee_id is None) == (file is None):
        err.print("[bold red]Erreur :[/] donnez soit --employee-id, soit --file.")
        raise typer.Exit(2)
    settings = load_settings()
    with domain_errors():
        requests = read_employee_file(file) if file is not None else None
    with database(settings) as db, domain_errors():
        outcomes = asyncio.run(
            predict_offline(db, settings, employee_id=employee_id, requests=requests)
        )
    if as_json:
        body = [o.as_response() for o in outcomes]
        sys.stdout.write(json.dumps(body, ensure_ascii=False, default=str, indent=2) + "\n")
        return
    table = Table("prédiction", "employé", "probabilité", "décision", "risque", "principal facteur")
    for o in outcomes:
        up = o.explanation["facteurs_hausse"]
        table.add_row(
            str(o.prediction_id),
            str(o.id_employee or "-"),
            f"{o.probability:.1%}",
            o.label,
            o.risk_level,
            up[0]["libelle"] if up else "-",
        )
    console.print(table)


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
        "id", "horodatage", "source", "client", "employé", "probabilité", "décision", "version"
    )
    for r in _recorded_rows(since, until, limit):
        table.add_row(
            str(r["prediction_id"]),
            f"{r['horodatage']:%Y-%m-%d %H:%M:%S}",
            r["source"],
            r["client"] or "cli",
            str(r["id_employee"] or "-"),
            f"{r['probabilite_depart']:.1%}",
            r["prediction"],
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
