"""What every command uses: the consoles, French one-line errors, settings, the database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console

from attrition.config import Settings, get_settings
from attrition.errors import AttritionError

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def say(message: str) -> None:
    # soft_wrap: a message stays on one line; Rich otherwise breaks it at 80 columns when the
    # output is a log file or a pipe (e.g. "— persistante" ending up on a line of its own).
    console.print(f"[bold cyan]›[/] {message}", soft_wrap=True)


@contextmanager
def domain_errors() -> Iterator[None]:
    try:
        yield
    except AttritionError as exc:
        err.print(f"[bold red]Erreur :[/] {exc.message}")
        raise typer.Exit(1) from None


def load_settings() -> Settings:
    with domain_errors():
        return get_settings()


@contextmanager
def database(settings: Settings | None = None) -> Iterator[Any]:
    from attrition.db.engine import resolve_database

    settings = settings or load_settings()
    with domain_errors():
        db = resolve_database(settings)
    try:
        yield db
    except Exception as exc:
        if not _missing_schema(exc):
            raise
        err.print(
            "[bold red]Erreur :[/] la base de données n'est pas initialisée (tables absentes) : "
            "lancez « make run » ou « attrition db create » puis « attrition db load »."
        )
        raise typer.Exit(1) from None
    finally:
        db.stop()


def _missing_schema(exc: BaseException) -> bool:
    """True when ``exc`` comes from a table or view that does not exist (schema never created).

    The driver's ``UndefinedTable`` may arrive bare (psycopg) or wrapped (SQLAlchemy's
    ``ProgrammingError.orig``, or an exception's cause), so the chain is walked.
    """
    from psycopg.errors import UndefinedTable

    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, UndefinedTable):
            return True
        todo.extend([current.__cause__, current.__context__, getattr(current, "orig", None)])
    return False


async def with_connection(db: Any, work: Callable[[Any], Any]) -> Any:
    import psycopg

    from attrition.db.engine import libpq_conninfo

    async with await psycopg.AsyncConnection.connect(libpq_conninfo(db.owner_url)) as conn:
        return await work(conn)
