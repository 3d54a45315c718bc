"""``attrition keys``: create, list, revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column, Table

from attrition.cli.common import console, database, domain_errors, load_settings

keys_app = typer.Typer(
    help="Clés API : créer, lister, fixer un quota, révoquer.", no_args_is_help=True
)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Nom du client (ex. equipe-rh).")],
    role: Annotated[str, typer.Option("--role", help="admin, predicteur, auditeur ou rh.")],
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="Durée de validité : 90d, 12h, 30m.")
    ] = None,
    daily_quota: Annotated[
        int | None,
        typer.Option(
            "--quota-jour",
            min=1,
            help="Prédictions par jour (UTC) permises à cette clé (défaut : "
            "ATTRITION_API__PREDICTIONS_PER_DAY).",
        ),
    ] = None,
) -> None:
    """Crée une clé API ; elle n'est affichée qu'une fois."""
    from attrition.security.keys import parse_duration
    from attrition.security.store import create_key, set_daily_quota

    settings = load_settings()
    with database(settings) as db, domain_errors():
        created = create_key(
            db,
            settings,
            name=name,
            role=role,
            expires_in=parse_duration(expires_in) if expires_in else None,
        )
        if daily_quota is not None:
            set_daily_quota(db, created.key_id, daily_quota)
    console.print(
        f"Clé [bold]{created.key_id}[/] ({created.role}) — conservez-la, "
        "elle ne sera plus affichée :"
    )
    console.print(created.key, soft_wrap=True)


@keys_app.command("list")
def keys_list() -> None:
    """Liste les clés (sans secret)."""
    from attrition.security.store import daily_quotas, list_keys

    with database() as db:
        rows = list_keys(db)
        quotas = daily_quotas(db)
    settings = load_settings()
    table = Table("nom", "rôle", "créée", "expire", "dernier usage", "révoquée", "quota/j")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=8))
    for k in rows:
        table.add_row(
            k.key_id,
            k.name,
            k.role,
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.expires_at:%Y-%m-%d}" if k.expires_at else "-",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "-",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-",
            str(quotas.get(k.key_id) or f"{settings.api.predictions_per_day}*"),
        )
    console.print(table)
    console.print("* quota journalier par défaut (ATTRITION_API__PREDICTIONS_PER_DAY)")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="Identifiant public de la clé.")],
) -> None:
    """Révoque une clé (refusée partout dans les secondes qui suivent)."""
    from attrition.security.store import revoke_key

    with database() as db, domain_errors():
        revoke_key(db, key_id)
    console.print(f"[green]Clé {key_id} révoquée.[/]")


@keys_app.command("quota")
def keys_quota(
    key_id: Annotated[str, typer.Argument(help="Identifiant public de la clé.")],
    daily_quota: Annotated[
        int | None,
        typer.Argument(min=1, help="Prédictions par jour (UTC) ; omis avec --defaut."),
    ] = None,
    default: Annotated[
        bool, typer.Option("--defaut", help="Revenir au quota par défaut du serveur.")
    ] = False,
) -> None:
    """Fixe le plafond journalier de prédictions d'une clé (pris en compte en 5 s au plus)."""
    from attrition.security.store import set_daily_quota

    if (daily_quota is None) == (not default):
        console.print("[red]Donnez un quota (entier > 0) ou --defaut, pas les deux.[/]")
        raise typer.Exit(2)
    with database() as db, domain_errors():
        set_daily_quota(db, key_id, daily_quota)
    shown = f"{daily_quota} prédictions par jour" if daily_quota else "le quota par défaut"
    console.print(f"[green]Clé {key_id} : {shown}.[/]")
