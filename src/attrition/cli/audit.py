"""``attrition audit`` (seal, verify) and ``attrition rgpd`` (export, purge)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from attrition.cli.common import console, database, domain_errors, err, say, with_connection

audit_app = typer.Typer(help="Trace d'audit : scellement et vérification.", no_args_is_help=True)
rgpd_app = typer.Typer(help="RGPD : export des données d'un employé, purge.", no_args_is_help=True)


@audit_app.command("seal")
def audit_seal(
    lag: Annotated[
        float, typer.Option(help="Ne scelle que les prédictions plus anciennes (s).")
    ] = 30.0,
) -> None:
    """Étend la chaîne d'empreintes aux prédictions enregistrées depuis le dernier scellement."""
    import asyncio

    from attrition.db import chain

    with database() as db:
        count = asyncio.run(with_connection(db, lambda c: chain.seal(c, lag_seconds=lag)))
    console.print(f"{count} prédiction(s) scellée(s).")


@audit_app.command("verify")
def audit_verify() -> None:
    """Parcourt la chaîne et signale le premier enregistrement modifié ou supprimé."""
    import asyncio

    from attrition.db import chain

    with database() as db:
        result = asyncio.run(with_connection(db, chain.verify))
    if result.ok:
        console.print(
            f"[green]Chaîne intacte[/] : {result.checked} prédiction(s) vérifiée(s), "
            f"{result.unsealed} pas encore scellée(s)."
        )
        return
    err.print(
        f"[bold red]Chaîne rompue[/] à la prédiction {result.broken_at} : {result.reason} "
        f"({result.checked} lien(s) valides avant)."
    )
    raise typer.Exit(2)


@rgpd_app.command("export")
def rgpd_export(
    employee_id: Annotated[int, typer.Option("--employee-id", help="Employé concerné.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Fichier JSON.")] = None,
) -> None:
    """Exporte tout ce qui est enregistré sur un employé (droit d'accès)."""
    import asyncio

    from attrition.services.records import export_employee

    with database() as db, domain_errors():
        data = asyncio.run(with_connection(db, lambda c: export_employee(c, employee_id)))
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        say(f"{len(data['predictions'])} prédiction(s) exportée(s) dans {output}")


@rgpd_app.command("purge")
def rgpd_purge(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Âge des enregistrements à supprimer (ex. 365d).")
    ] = "365d",
    yes: Annotated[bool, typer.Option("--yes", help="Ne pas demander de confirmation.")] = False,
) -> None:
    """Purge la trace d'audit au-delà de la durée de conservation (journalisée)."""
    import asyncio
    from datetime import UTC, datetime

    from attrition.db.retention import purge
    from attrition.security.keys import parse_duration

    with domain_errors():
        cutoff = datetime.now(UTC) - parse_duration(older_than)
    if not yes and not typer.confirm(
        f"Supprimer définitivement les prédictions antérieures au {cutoff:%Y-%m-%d %H:%M} ?"
    ):
        raise typer.Exit(1)
    with database() as db, domain_errors():
        report = asyncio.run(with_connection(db, lambda c: purge(c, cutoff)))
    console.print(
        f"Purge journalisée : {report.predictions} prédiction(s), {report.inputs} entrée(s), "
        f"{report.rejected} requête(s) refusée(s) supprimées."
    )
