"""``attrition outcomes``: record what happened to employees (one fact, or a CSV file)."""

from __future__ import annotations

import asyncio
import getpass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

outcomes_app = typer.Typer(
    help="Issues constatées (départ ou présence) qui alimentent la performance réalisée.",
    no_args_is_help=True,
)


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"« {value} » n'est pas une date AAAA-MM-JJ ({option}).") from None


async def _run(owner_url: Any, work: Any) -> Any:
    import psycopg

    from attrition.db.engine import libpq_conninfo

    async with await psycopg.AsyncConnection.connect(libpq_conninfo(owner_url)) as conn:
        result = await work(conn)
        await conn.commit()
        return result


@outcomes_app.command("record")
def outcomes_record(
    id_employee: Annotated[int, typer.Argument(help="Identifiant de l'employé.")],
    statut: Annotated[str, typer.Option(help="parti ou present.")],
    date_constat: Annotated[str, typer.Option("--date", help="Date du constat (AAAA-MM-JJ).")],
) -> None:
    """Enregistre un constat : parti à une date, ou encore présent à une date."""
    from attrition.cli.common import console, database, domain_errors
    from attrition.services.outcomes import record_outcome

    when = _date(date_constat, "--date")
    assert when is not None
    who = f"cli ({getpass.getuser()})"
    with database() as db, domain_errors():
        outcome = asyncio.run(
            _run(
                db.owner_url,
                lambda conn: record_outcome(
                    conn, id_employee, statut, when, source="cli", recorded_by=who
                ),
            )
        )
    if outcome.deja_enregistre:
        console.print(f"[yellow]Constat déjà enregistré le {outcome.enregistre_le:%Y-%m-%d}.[/]")
    else:
        console.print(f"[green]Constat enregistré : {id_employee} {statut} le {when}.[/]")


@outcomes_app.command("import")
def outcomes_import(
    path: Annotated[Path, typer.Argument(help="Fichier CSV (liste de constats ou extrait SIRH).")],
    extraction: Annotated[
        str | None,
        typer.Option(
            "--date-extraction",
            help="Pour un extrait SIRH : sa date ; chaque employé listé y est présent.",
        ),
    ] = None,
) -> None:
    """Importe des constats : `id_employee,statut,date`, ou un extrait SIRH plus récent.

    Tout ou rien : une ligne invalide n'enregistre rien. Pour un extrait SIRH, les employés
    déjà prédits qui n'y figurent plus sont listés (à vérifier), pas comptés comme partis :
    leur date de départ est inconnue (colonne `date_depart` facultative).
    """
    from attrition.cli.common import console, database, domain_errors
    from attrition.errors import ValidationError
    from attrition.services.outcomes import import_outcomes, read_outcome_file

    if not path.is_file():
        raise typer.BadParameter(f"Fichier introuvable : {path}.")
    extraction_date = _date(extraction, "--date-extraction")
    who = f"import ({getpass.getuser()}, {path.name})"
    with database() as db, domain_errors():
        facts = read_outcome_file(path, extraction_date)
        if not facts:
            raise ValidationError(f"{path.name} ne contient aucun constat.")
        summary = asyncio.run(
            _run(
                db.owner_url,
                lambda conn: import_outcomes(
                    conn, facts, recorded_by=who, sirh_extract=extraction_date is not None
                ),
            )
        )
    console.print(
        f"[green]{summary.lus} constat(s) lu(s) : {summary.enregistres} enregistré(s), "
        f"{summary.deja_enregistres} déjà présent(s).[/]"
    )
    if summary.absents_de_l_extrait:
        shown = ", ".join(map(str, summary.absents_de_l_extrait[:20]))
        more = "…" if len(summary.absents_de_l_extrait) > 20 else ""
        console.print(
            f"[yellow]{len(summary.absents_de_l_extrait)} employé(s) déjà prédit(s) absent(s) "
            f"de l'extrait (départ probable, date à saisir) : {shown}{more}[/]"
        )
