"""``attrition db``: create, load, url, shell, schema-sql, erd."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from attrition.cli.common import console, database, domain_errors, load_settings, say

db_app = typer.Typer(help="Base de données : création, chargement, accès.", no_args_is_help=True)


@db_app.command("create")
def db_create() -> None:
    """Crée la base si besoin, applique les migrations et les droits du rôle applicatif."""
    from attrition.bootstrap import prepare_database
    from attrition.db.engine import ensure_database_exists

    settings = load_settings()
    with domain_errors():
        ensure_database_exists(settings)
    with database(settings) as db, domain_errors():
        prepare_database(settings, say, db)
        console.print("[green]Base prête.[/]")


@db_app.command("load")
def db_load(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Dossier des trois extraits CSV.")
    ] = None,
) -> None:
    """Charge les trois extraits (vérifiés, validés) en une transaction ; relançable sans effet."""
    from attrition.bootstrap import ensure_data_dir, prepare_database
    from attrition.data.extracts import read_extracts
    from attrition.db.loading import load_extracts

    settings = load_settings()
    with database(settings) as db, domain_errors():
        prepare_database(settings, say, db)
        directory = ensure_data_dir(settings, data_dir, say)
        say(f"Lecture et validation des extraits de {directory}…")
        extracts = read_extracts(directory)
        with db.owner_engine().begin() as conn:
            report = load_extracts(conn, extracts)
        table = Table("table", "lignes écrites", "lignes en base")
        for name, total in report.totals.items():
            table.add_row(name, str(report.written[name]), str(total))
        console.print(table)
        if not report.changed:
            console.print("Aucun changement : la base contenait déjà ces données.")


@db_app.command("url")
def db_url() -> None:
    """Affiche l'URL de la base utilisée (serveur embarqué ou DATABASE_URL)."""
    with database() as db:
        console.print(db.owner_url.render_as_string(hide_password=True), soft_wrap=True)


@db_app.command("shell")
def db_shell() -> None:
    """Ouvre psql sur la base utilisée (le psql du serveur embarqué si besoin)."""
    from attrition.db.engine import psql_command

    with database() as db:
        command = psql_command(db)
        code = os.spawnv(os.P_WAIT, command[0], command)  # noqa: S606
    raise typer.Exit(code)


@db_app.command("schema-sql")
def db_schema_sql(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Fichier de sortie.")
    ] = None,
) -> None:
    """Écrit le DDL SQL complet, généré depuis les migrations (sql/schema.sql)."""
    from attrition.db.migrate import schema_sql

    sql = schema_sql()
    if output:
        output.write_text(sql)
        say(f"Schéma écrit dans {output}")
    else:
        sys.stdout.write(sql)


@db_app.command("erd")
def db_erd(
    markdown: Annotated[Path, typer.Option(help="Page à mettre à jour.")] = Path(
        "docs/base-de-donnees.md"
    ),
) -> None:
    """Régénère le diagramme entité-association (Mermaid) depuis les modèles SQLAlchemy."""
    from attrition.db.erd import update_markdown

    changed = update_markdown(markdown)
    say(f"Diagramme {'mis à jour' if changed else 'déjà à jour'} dans {markdown}")
