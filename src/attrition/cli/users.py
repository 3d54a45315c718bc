"""``attrition users``: people's accounts for the web interface, and their sessions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from attrition.cli.common import console, database, domain_errors

users_app = typer.Typer(
    help=(
        "Comptes des personnes (interface web) : créer, lister, réinitialiser, désactiver, "
        "réactiver."
    ),
    no_args_is_help=True,
)

T = TypeVar("T")


def _run(work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``work(service)`` on the owner connection, domain errors as one French line."""
    from attrition.services.accounts import AccountService, connect_to

    with database() as db, domain_errors():
        return asyncio.run(work(AccountService(connect_to(db.owner_conninfo))))


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone():%Y-%m-%d %H:%M}" if moment else "-"


def _show_password(login: str, password: str, what: str) -> None:
    console.print(
        f"{what} « [bold]{login}[/] » — mot de passe à usage unique, à transmettre par un canal "
        "sûr (il ne sera plus affiché ; à changer à la première connexion) :"
    )
    console.print(password, soft_wrap=True)


@users_app.command("create")
def users_create(
    login: Annotated[
        str, typer.Option("--login", help="Identifiant (lettres, chiffres, . _ -), ex. prenom.nom.")
    ],
    role: Annotated[str, typer.Option("--role", help="admin, predicteur ou auditeur.")],
) -> None:
    """Crée un compte ; son mot de passe à usage unique n'est affiché qu'une fois."""
    issued = _run(lambda service: service.create_user(login, role))
    _show_password(issued.login, issued.password, f"Compte créé ({issued.role})")


@users_app.command("list")
def users_list() -> None:
    """Liste les comptes : rôle, état, création, dernière connexion."""
    rows = _run(lambda service: service.list_users())
    now = datetime.now(UTC)
    table = Table("identifiant", "rôle", "état", "créé", "dernière connexion")
    for u in rows:
        if u.disabled_at:
            state = "désactivé"
        elif u.locked_until and u.locked_until > now:
            state = f"bloqué jusqu'à {_when(u.locked_until)}"
        elif u.must_change_password:
            state = "mot de passe à choisir"
        else:
            state = "actif"
        table.add_row(u.login, u.role, state, _when(u.created_at), _when(u.last_sign_in_at))
    console.print(table)


@users_app.command("reset")
def users_reset(
    login: Annotated[str, typer.Argument(help="Identifiant du compte.")],
) -> None:
    """Donne un nouveau mot de passe à usage unique ; les sessions du compte sont fermées."""
    issued = _run(lambda service: service.reset_password(login))
    _show_password(issued.login, issued.password, "Compte réinitialisé")


@users_app.command("disable")
def users_disable(
    login: Annotated[str, typer.Argument(help="Identifiant du compte.")],
) -> None:
    """Désactive un compte : connexion refusée, sessions fermées immédiatement."""
    _run(lambda service: service.disable_user(login))
    console.print(
        f"[green]Compte {login.strip().lower()} désactivé ; ses sessions sont fermées.[/]"
    )


@users_app.command("enable")
def users_enable(
    login: Annotated[str, typer.Argument(help="Identifiant du compte.")],
) -> None:
    """Réactive un compte désactivé (même mot de passe) ; l'action reste dans la trace d'audit."""
    login = login.strip().lower()
    if _run(lambda service: service.enable_user(login)):
        console.print(
            f"[green]Compte {login} réactivé : il peut se reconnecter avec son mot de passe "
            "(attrition users reset pour lui en donner un nouveau).[/]"
        )
    else:
        console.print(f"Compte {login} déjà actif : rien à faire.")


@users_app.command("sessions")
def users_sessions() -> None:
    """Liste les sessions ouvertes dans l'interface web."""
    rows = _run(lambda service: service.list_sessions())
    table = Table("n°", "compte", "rôle", "ouverte", "dernière activité", "expire")
    for s in rows:
        table.add_row(
            str(s.id),
            s.login,
            s.role,
            _when(s.created_at),
            _when(s.last_seen_at),
            _when(s.expires_at),
        )
    console.print(table)


@users_app.command("end-session")
def users_end_session(
    session_id: Annotated[
        int, typer.Argument(help="Numéro de la session (attrition users sessions).")
    ],
) -> None:
    """Ferme une session : le navigateur qui la tient est déconnecté à sa page suivante."""
    _run(lambda service: service.end_session(session_id))
    console.print(f"[green]Session {session_id} fermée.[/]")
