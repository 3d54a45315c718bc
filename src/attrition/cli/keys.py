"""``attrition keys``: create, list, revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from attrition.cli.common import console, database, domain_errors, load_settings

keys_app = typer.Typer(help="Clés API : créer, lister, révoquer.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Nom du client (ex. equipe-rh).")],
    role: Annotated[str, typer.Option("--role", help="admin, predicteur ou auditeur.")],
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Durée de validité : 90d, 12h, 30m.")
    ] = None,
) -> None:
    """Crée une clé API ; elle n'est affichée qu'une fois."""
    from attrition.security.keys import parse_duration
    from attrition.security.store import create_key

    settings = load_settings()
    with database(settings) as db, domain_errors():
        created = create_key(
            db,
            settings,
            name=name,
            role=role,
            expires_in=parse_duration(expires_in) if expires_in else None,
        )
    console.print(
        f"Clé [bold]{created.key_id}[/] ({created.role}) — conservez-la, "
        "elle ne sera plus affichée :"
    )
    console.print(created.key, soft_wrap=True)


@keys_app.command("list")
def keys_list() -> None:
    """Liste les clés (sans secret)."""
    from attrition.security.store import list_keys

    with database() as db:
        rows = list_keys(db)
    table = Table("id", "nom", "rôle", "créée", "expire", "dernier usage", "révoquée")
    for k in rows:
        table.add_row(
            k.key_id,
            k.name,
            k.role,
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.expires_at:%Y-%m-%d}" if k.expires_at else "-",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-",
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Identifiant public de la clé.")],
) -> None:
    """Révoque une clé (refusée partout dans les secondes qui suivent)."""
    from attrition.security.store import revoke_key

    with database() as db, domain_errors():
        revoke_key(db, key_id)
    console.print(f"[green]Clé {key_id} révoquée.[/]")
