"""``attrition monitor``: supervision commands (input drift), run against the owner database."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

monitor_app = typer.Typer(
    help="Supervision du modèle en production : dérive des entrées.", no_args_is_help=True
)


def parse_since(value: str | None, now: datetime | None = None) -> datetime:
    """An ISO 8601 date or date-time (UTC when no offset is given); 30 days ago by default."""
    from attrition.monitoring.drift import DEFAULT_WINDOW

    if value is None:
        return (now or datetime.now(UTC)) - DEFAULT_WINDOW
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"« {value} » n'est pas une date ISO 8601 (ex. 2026-01-31 ou 2026-01-31T08:00:00Z)."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _report(owner_url: Any, since: datetime) -> Any:
    import psycopg

    from attrition.db.engine import libpq_conninfo
    from attrition.model.runtime import ModelRuntime
    from attrition.monitoring.drift import drift_report

    async with await psycopg.AsyncConnection.connect(
        libpq_conninfo(owner_url), autocommit=True
    ) as conn:
        runtime = ModelRuntime()
        await runtime.refresh(conn, force=True)
        return await drift_report(conn, since=since, model=runtime.current)


@monitor_app.command("drift")
def monitor_drift(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Début de la période (ISO 8601) ; défaut : il y a 30 jours."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Rapport complet en JSON.")] = False,
) -> None:
    """Compare les entrées récentes aux données d'entraînement (PSI par variable)."""
    from rich.table import Table

    from attrition.cli.common import console, database, domain_errors
    from attrition.monitoring.drift import STATUS_LABELS

    start = parse_since(since)
    with database() as db, domain_errors():
        report = asyncio.run(_report(db.owner_url, start))
    if as_json:
        sys.stdout.write(
            json.dumps(report.as_dict(), ensure_ascii=False, default=str, indent=2) + "\n"
        )
        return
    table = Table("variable", "PSI", "statut", "hors domaine")
    for feature in report.variables:
        table.add_row(
            feature.libelle,
            f"{feature.psi:.3f}",
            STATUS_LABELS[feature.statut],
            f"{100 * feature.hors_domaine:.1f} %",
        )
    console.print(table)
    rate = report.taux_positifs
    if rate.reference is not None and rate.recent is not None:
        console.print(
            f"Prédictions positives : {100 * rate.recent:.1f} % récemment contre "
            f"{100 * rate.reference:.1f} % sur les données d'entraînement "
            f"(PSI {rate.psi:.3f}) ; taux de départ observé {100 * rate.taux_depart_observe:.1f} %."
        )
    console.print(
        f"{report.n_recent} entrées depuis {start:%Y-%m-%d %H:%M} UTC, comparées à "
        f"{report.n_reference} employés (modèle {report.model_version or 'aucun'})."
    )
    colour = {"stable": "green", "a_surveiller": "yellow", "action_requise": "red"}.get(
        report.statut, "white"
    )
    console.print(f"[bold {colour}]{report.libelle_statut.capitalize()}[/] : {report.message}")


async def _performance(owner_url: Any, horizon_days: int) -> Any:
    import psycopg

    from attrition.db.engine import libpq_conninfo
    from attrition.monitoring.performance import performance_report

    async with await psycopg.AsyncConnection.connect(
        libpq_conninfo(owner_url), autocommit=True
    ) as conn:
        return await performance_report(conn, horizon_days=horizon_days)


@monitor_app.command("performance")
def monitor_performance(
    horizon: Annotated[
        int, typer.Option("--horizon-jours", min=30, max=1095, help="Horizon, en jours.")
    ] = 365,
    as_json: Annotated[bool, typer.Option("--json", help="Rapport complet en JSON.")] = False,
) -> None:
    """Compare les prédictions passées aux départs constatés par les RH, par version."""
    from rich.table import Table

    from attrition.cli.common import console, database, domain_errors

    with database() as db, domain_errors():
        report = asyncio.run(_performance(db.owner_url, horizon))
    if as_json:
        sys.stdout.write(
            json.dumps(report.as_dict(), ensure_ascii=False, default=str, indent=2) + "\n"
        )
        return

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f} %"

    table = Table(
        "version", "prédites", "résolues", "départs", "précision", "rappel", "observé",
        "prédit", "statut",
    )  # fmt: skip
    for v in report.versions:
        table.add_row(
            v.model_version,
            str(v.predictions),
            str(v.resolues),
            str(v.departs),
            pct(v.precision),
            pct(v.rappel),
            pct(v.taux_observe),
            pct(v.probabilite_moyenne),
            v.libelle_statut,
        )
    console.print(table)
    for v in report.versions:
        for reason in v.raisons:
            console.print(f"{v.model_version} : {reason}")
    console.print(f"Horizon {report.horizon_jours} jours. {report.regle}")
