"""Every command the README and the docs show exists as written (issue #18).

Each ``attrition ...`` line of a shell block (README.md, docs/*.md) is parsed by the CLI
itself, as it would be when run: the sub-command path must exist, every option must be one
of the command's, every value must convert (Click's ``make_context`` parses without running
anything). Each ``make <target>`` shown must be a target of the Makefile. Running them for
real on a fresh clone is done by hand before a release (docs/tests.md).
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, date, datetime
from typing import Any

import pytest
import typer.main
from typer.core import TyperGroup
from typer.exceptions import TyperException

from attrition.cli import app
from attrition.config import PROJECT_ROOT

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMMAND = re.compile(r"^(?:\$\s+)?(?:\.venv/bin/)?(attrition|make)\s+(.*)$")


def shown(kind: str) -> list[tuple[str, str]]:
    """(``page:line``, the command's arguments) for every ``kind`` command of a shell block."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in BLOCK.finditer(text):
            first = text.count("\n", 0, block.start(1)) + 1
            for offset, line in enumerate(block.group(1).splitlines()):
                match = COMMAND.match(line.strip())
                if match and match.group(1) == kind:
                    where = f"{page.relative_to(PROJECT_ROOT)}:{first + offset}"
                    found.append((where, match.group(2)))
    return found


def words(arguments: str) -> list[str]:
    """The arguments as the shell splits them, without the trailing comment."""
    lexer = shlex.shlex(arguments, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return [w for w in lexer if w not in {"\\"}]


ATTRITION = shown("attrition")
MAKE = shown("make")


def test_the_pages_show_commands() -> None:
    readme = [where for where, _ in ATTRITION if where.startswith("README.md")]
    assert len(readme) >= 20 and len(MAKE) >= 5


def parse_error(arguments: str) -> str | None:
    """Why the CLI would refuse these arguments before running anything, or None."""
    command: Any = typer.main.get_command(app)
    args = words(arguments)
    path = ["attrition"]
    while isinstance(command, TyperGroup) and args and not args[0].startswith("-"):
        sub = command.commands.get(args[0])
        if sub is None:
            return f"no command « {' '.join([*path, args[0]])} »"
        command, path = sub, [*path, args.pop(0)]
    if "--help" in args:
        return None  # the path exists: its help is shown
    if isinstance(command, TyperGroup):
        return f"« {' '.join(path)} » is a group, not a command"
    try:
        command.make_context(" ".join(path), args)
    except TyperException as exc:  # usage errors (Typer's own copy of Click's)
        return f"« {' '.join([*path, *args])} » : {exc.format_message()}"  # type: ignore[attr-defined]
    return None


@pytest.mark.parametrize(("where", "arguments"), ATTRITION, ids=[w for w, _ in ATTRITION])
def test_each_attrition_command_parses(where: str, arguments: str) -> None:
    error = parse_error(arguments)
    assert error is None, f"{where}: {error}"


def _targets() -> set[str]:
    text = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.MULTILINE))


@pytest.mark.parametrize(("where", "arguments"), MAKE, ids=[w for w, _ in MAKE])
def test_each_make_target_exists(where: str, arguments: str) -> None:
    targets = [w for w in words(arguments) if "=" not in w and not w.startswith("-")]
    missing = set(targets) - _targets()
    assert targets and not missing, f"{where}: no Makefile target {sorted(missing)}"


def test_the_parser_refuses_what_does_not_exist() -> None:
    """The check above can fail: a wrong option or command is caught."""
    assert parse_error("predict --employee-id 1") is None
    assert parse_error("users enable prenom.nom  # comment") is None
    assert "No such option" in (parse_error("predict --nope") or "")
    assert "no command" in (parse_error("modele list") or "")
    assert "group" in (parse_error("users") or "")
    assert "--employee-id" in (parse_error("predict --employee-id un") or "")
    assert "Missing argument" in (parse_error("model show") or "")
    assert "run" in _targets() and "serve" not in _targets()


@pytest.mark.parametrize(("where", "arguments"), ATTRITION, ids=[w for w, _ in ATTRITION])
def test_no_example_date_is_in_the_future(where: str, arguments: str) -> None:
    """A constat dated in the future is refused: an example must not show one."""
    today = datetime.now(UTC).date()
    for value in re.findall(r"--date[ =](\d{4}-\d{2}-\d{2})", arguments):
        assert date.fromisoformat(value) <= today, f"{where}: --date {value} is in the future"
