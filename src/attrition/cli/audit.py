"""``attrition audit`` (seal, verify) and ``attrition rgpd`` (export, erase, purge)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from attrition.cli.common import (
    console,
    database,
    domain_errors,
    err,
    load_settings,
    say,
    with_connection,
)

audit_app = typer.Typer(help="Trace d'audit : scellement et vérification.", no_args_is_help=True)
rgpd_app = typer.Typer(
    help="RGPD : export et effacement des données d'un employé, purge.", no_args_is_help=True
)


@audit_app.command("seal")
def audit_seal() -> None:
    """Scelle toutes les prédictions enregistrées et pas encore scellées ; publie la tête."""
    import asyncio

    from attrition.db import chain
    from attrition.security.secrets import audit_key

    settings = load_settings()
    key = audit_key(settings)

    async def seal_all(conn: Any) -> tuple[int, Any]:
        await chain.requeue(conn)
        total, last = 0, None
        while True:
            count, checkpoint = await chain.seal(conn, key, wait=True)
            if count == 0:
                return total, last
            total, last = total + count, checkpoint

    with database(settings) as db:
        count, checkpoint = asyncio.run(with_connection(db, seal_all))
    if checkpoint is not None:
        chain.publish(checkpoint, settings.resolved_checkpoint_dir)
        console.print(
            f"{count} prédiction(s) scellée(s) ; point de contrôle n° {checkpoint.position} "
            f"publié dans {settings.resolved_checkpoint_dir}.",
            soft_wrap=True,
        )
    else:
        console.print("0 prédiction(s) scellée(s) : la chaîne était à jour.")


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="Point de contrôle conservé hors de la base (fichier ou dossier), répétable.",
        ),
    ] = None,
) -> None:
    """Recalcule chaque empreinte et chaque lien ; signale toutes les ruptures, par nature."""
    import asyncio

    from attrition.db import chain, verification
    from attrition.security.secrets import audit_key

    settings = load_settings()
    key = audit_key(settings)
    sources = [settings.resolved_checkpoint_dir, *(checkpoint or [])]
    checkpoints = chain.read_checkpoints(sources)
    with database(settings) as db:
        result = asyncio.run(
            with_connection(db, lambda c: verification.verify(c, key, checkpoints))
        )
    pending = (
        f"{result.unsealed} pas encore scellée(s)"
        + (f" (dont {', '.join(map(str, result.unsealed_ids[:5]))})" if result.unsealed else "")
        + f", {result.erased} effacée(s) (RGPD)"
        + f", {result.checkpoints} point(s) de contrôle comparé(s)."
    )
    if result.ok:
        console.print(
            f"[green]Chaîne intacte[/] : {result.checked} prédiction(s) vérifiée(s), {pending}",
            soft_wrap=True,
        )
        return
    counts: dict[str, int] = {}
    for found in result.breaks:
        counts[found.kind] = counts.get(found.kind, 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    err.print(
        f"[bold red]Chaîne rompue[/] : {len(result.breaks)} rupture(s) ({summary}) ; "
        f"{result.checked} lien(s) parcourus, {pending}",
        soft_wrap=True,
    )
    for found in result.breaks:
        err.print(f"  - Rupture à la {found.describe()}", soft_wrap=True)
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


@rgpd_app.command("erase")
def rgpd_erase(
    employee_id: Annotated[int, typer.Option("--employee-id", help="Employé concerné.")],
    yes: Annotated[bool, typer.Option("--yes", help="Ne pas demander de confirmation.")] = False,
) -> None:
    """Efface tout ce qui concerne un employé (droit à l'effacement) ; la trace reste vérifiable."""
    import asyncio

    from attrition.db import chain
    from attrition.db.retention import erase_employee
    from attrition.security.secrets import audit_key

    if not yes and not typer.confirm(
        f"Effacer définitivement le dossier et les prédictions de l'employé {employee_id} ?"
    ):
        raise typer.Exit(1)
    settings = load_settings()
    key = audit_key(settings)

    async def work(conn: Any) -> Any:
        # Seal first: an erased record keeps its sealed link (and a signed tombstone).
        await chain.requeue(conn)
        while (await chain.seal(conn, key, wait=True))[0]:
            pass
        return await erase_employee(conn, key, employee_id)

    with database(settings) as db, domain_errors():
        report = asyncio.run(with_connection(db, work))
    console.print(
        f"Employé {employee_id} effacé : {report.predictions} prédiction(s), "
        f"{report.refused} requête(s) refusée(s), {report.idempotency} réponse(s) "
        f"d'idempotence, dossier {'supprimé' if report.dossier else 'absent'}. "
        "La chaîne garde leurs liens et un effacement signé.",
        soft_wrap=True,
    )


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
        f"{report.rejected} requête(s) refusée(s) et {report.usage_counts} compte(s) de quota "
        "journalier supprimés."
    )
