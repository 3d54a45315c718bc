"""``attrition data``: fetch and check the TechNova extracts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from attrition.cli.common import console, domain_errors, load_settings, say

data_app = typer.Typer(
    help="Extraits TechNova : téléchargement et vérification.", no_args_is_help=True
)


@data_app.command("fetch")
def data_fetch(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Dossier cible.")] = None,
) -> None:
    """Télécharge les extraits depuis leurs copies publiques et vérifie leur SHA-256."""
    from attrition.data.extracts import resolve_data_dir
    from attrition.data.fetch import fetch_extracts

    settings = load_settings()
    target = resolve_data_dir(data_dir, settings.data_dir, settings.resolved_data_dir)
    with domain_errors():
        fetch_extracts(target, progress=say)
    console.print(f"[green]Extraits prêts dans {target}.[/]")


@data_app.command("check")
def data_check(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Dossier des extraits.")
    ] = None,
) -> None:
    """Valide les extraits sans rien écrire (types, domaines, jointure, cohérence)."""
    from attrition.data.extracts import read_extracts, resolve_data_dir

    settings = load_settings()
    directory = resolve_data_dir(data_dir, settings.data_dir, settings.resolved_data_dir)
    with domain_errors():
        extracts = read_extracts(directory)
    left = sum(s["a_quitte_l_entreprise"] for s in extracts.surveys)
    console.print(f"[green]{len(extracts)} employés valides[/], dont {left} départs.")
