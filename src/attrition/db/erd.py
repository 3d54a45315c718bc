"""The entity-relationship diagram of the schema, generated from the SQLAlchemy metadata.

:func:`render_mermaid` turns every table of a :class:`~sqlalchemy.MetaData` into a Mermaid
``erDiagram``: columns with their PostgreSQL types, ``PK``/``FK``/``UK`` markers, and one
relationship per foreign key (cardinality from nullability and uniqueness, identifying when
the foreign key is part of the primary key). The output is deterministic (tables and
relationships sorted by name, columns in table order), so the diagram committed in
``docs/base-de-donnees.md`` can be compared with the code by a test.

Mermaid attribute types are single words without spaces or commas (older renderers refuse
them), so multi-word PostgreSQL types use their documented aliases (``timestamptz``,
``float8``) and parameters that hold a comma (``numeric(5,2)``) move to the comment.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Column, Enum, ForeignKeyConstraint, MetaData, Table, UniqueConstraint
from sqlalchemy.dialects import postgresql

from attrition.db.base import REFERENCES

START_MARKER = "<!-- erd:start -->"
END_MARKER = "<!-- erd:end -->"

_DIALECT = postgresql.dialect()
# https://www.postgresql.org/docs/current/datatype.html (table 8.1, "Aliases")
_ALIASES = {
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "double precision": "float8",
    "character varying": "varchar",
}
_BLOCK_RE = re.compile(
    re.escape(START_MARKER) + r"\n(?P<body>.*?)" + re.escape(END_MARKER), re.DOTALL
)
_FENCE_RE = re.compile(r"^```mermaid\n(?P<diagram>.*?)```\n?$", re.DOTALL)


def _default_metadata() -> MetaData:
    from attrition.db.models import Base

    return Base.metadata


def postgresql_type(column: Column[object]) -> tuple[str, str | None]:
    """The column's PostgreSQL type as a Mermaid-safe word, plus the full type if it lost detail.

    ``timestamp with time zone`` becomes its alias ``timestamptz`` (nothing lost);
    ``numeric(5, 2)`` becomes ``numeric`` and ``numeric(5,2)`` is returned for the comment.
    """
    exact = column.type.compile(dialect=_DIALECT).lower()
    word = exact
    for long_name, alias in _ALIASES.items():
        word = word.replace(long_name, alias)
    word = word.replace(", ", ",")
    if "," in word or " " in word:
        return word.split("(")[0].replace(" ", "_"), exact.replace(", ", ",")
    return word, None


def _unique_columns(table: Table) -> set[str]:
    """Columns unique on their own (constraint or full unique index; partial ones excluded)."""
    out: set[str] = set()
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and len(constraint.columns) == 1:
            out.update(c.name for c in constraint.columns)
    for index in table.indexes:
        partial = index.dialect_options["postgresql"].get("where") is not None
        if index.unique and not partial and len(index.columns) == 1:
            out.update(c.name for c in index.columns)
    return out


def _attribute(column: Column[object], unique: set[str], foreign: set[str]) -> str:
    word, exact = postgresql_type(column)
    keys = [
        marker
        for marker, present in (
            ("PK", column.primary_key),
            ("FK", column.name in foreign),
            ("UK", column.name in unique and not column.primary_key),
        )
        if present
    ]
    notes = []
    if isinstance(column.type, Enum):
        notes.append("enum")
    if exact is not None:
        notes.append(exact)
    if column.nullable and not column.primary_key:
        notes.append("nullable")
    line = f"        {word} {column.name}"
    if keys:
        line += " " + ", ".join(keys)
    if notes:
        line += ' "' + ", ".join(notes) + '"'
    return line


def _edge(
    parent: str, child: str, columns: list[str], *, optional: bool, one_to_one: bool, pk: bool
) -> str:
    """One relationship line: ``pk`` (the columns are the child's key) draws it solid."""
    parent_side = "|o" if optional else "||"
    child_side = "o|" if one_to_one else "o{"
    link = "--" if pk else ".."
    return f'    {parent} {parent_side}{link}{child_side} {child} : "{", ".join(columns)}"'


def _relationship(table: Table, fk: ForeignKeyConstraint, unique: set[str]) -> str:
    columns = [c.name for c in fk.columns]
    pk = {c.name for c in table.primary_key.columns}
    return _edge(
        fk.referred_table.name,
        table.name,
        columns,
        optional=any(c.nullable for c in fk.columns),
        one_to_one=set(columns) == pk or (len(columns) == 1 and columns[0] in unique),
        pk=set(columns) <= pk,
    )


def _checked_relationship(table: Table, column: Column[object], unique: set[str]) -> str:
    """A reference checked by a trigger instead of a foreign key (``column.info``), drawn as
    the foreign key it stands for (migrations 0015 and 0016)."""
    return _edge(
        str(column.info[REFERENCES]).split(".", 1)[0],
        table.name,
        [column.name],
        optional=bool(column.nullable),
        one_to_one=column.name in unique or bool(column.primary_key),
        pk=bool(column.primary_key),
    )


def render_mermaid(metadata: MetaData | None = None) -> str:
    """A Mermaid ``erDiagram`` of every table of ``metadata`` (default: the service's schema).

    Parameters
    ----------
    metadata:
        The metadata to draw; ``attrition.db.models.Base.metadata`` when omitted.

    Returns
    -------
    str
        The diagram source, ending with a newline; identical for identical metadata.
    """
    metadata = metadata if metadata is not None else _default_metadata()
    tables = sorted(metadata.tables.values(), key=lambda t: t.name)
    lines = ["erDiagram"]
    relationships: list[str] = []
    for table in tables:
        unique = _unique_columns(table)
        foreign_keys = sorted(
            table.foreign_key_constraints,
            key=lambda fk: (fk.referred_table.name, [c.name for c in fk.columns]),
        )
        checked = [c for c in table.columns if REFERENCES in c.info]
        foreign = {c.name for fk in foreign_keys for c in fk.columns} | {c.name for c in checked}
        relationships.extend(_relationship(table, fk, unique) for fk in foreign_keys)
        relationships.extend(_checked_relationship(table, c, unique) for c in checked)
        lines.append(f"    {table.name} {{")
        lines.extend(_attribute(column, unique, foreign) for column in table.columns)
        lines.append("    }")
    lines.extend(sorted(relationships))
    return "\n".join(lines) + "\n"


def markdown_block(diagram: str) -> str:
    """The diagram as the fenced block that sits between the markers of a Markdown page."""
    return f"{START_MARKER}\n```mermaid\n{diagram}```\n{END_MARKER}"


def extract_diagram(markdown: str) -> str:
    """The Mermaid source between the markers of ``markdown``; ValueError when absent."""
    block = _BLOCK_RE.search(markdown)
    if block is None:
        raise ValueError(f"markers {START_MARKER} / {END_MARKER} not found")
    fence = _FENCE_RE.match(block.group("body"))
    if fence is None:
        raise ValueError("the block between the markers is not a ```mermaid fence")
    return fence.group("diagram")


def update_markdown(path: Path, metadata: MetaData | None = None) -> bool:
    """Rewrite the diagram between the markers of the page at ``path``; True if it changed."""
    text = path.read_text(encoding="utf-8")
    extract_diagram(text)  # refuse a page without a well-formed block
    block = markdown_block(render_mermaid(metadata))
    updated = _BLOCK_RE.sub(lambda _m: block, text, count=1)
    if updated == text:
        return False
    path.write_text(updated, encoding="utf-8")
    return True


def write_erd(path: Path, metadata: MetaData | None = None) -> Path:
    """Write the diagram to ``path``: raw Mermaid (``.mmd``), or a fenced block for ``.md``."""
    diagram = render_mermaid(metadata)
    content = f"```mermaid\n{diagram}```\n" if path.suffix == ".md" else diagram
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path
