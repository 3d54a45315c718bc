"""The generated ER diagram: complete, deterministic, and the one committed in the docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, Numeric, String, Table

from attrition.config import PROJECT_ROOT
from attrition.db.base import REFERENCES
from attrition.db.erd import (
    END_MARKER,
    START_MARKER,
    extract_diagram,
    markdown_block,
    render_mermaid,
    update_markdown,
    write_erd,
)
from attrition.db.models import Base

DOC = PROJECT_ROOT / "docs" / "base-de-donnees.md"


def _entity(diagram: str, table: str) -> list[str]:
    block = re.search(rf"^    {table} \{{\n(.*?)^    \}}$", diagram, re.MULTILINE | re.DOTALL)
    assert block is not None, f"entity {table} missing"
    return [line.strip() for line in block.group(1).splitlines()]


def test_committed_diagram_matches_the_models() -> None:
    committed = extract_diagram(DOC.read_text(encoding="utf-8"))
    assert committed == render_mermaid(Base.metadata), (
        "docs/base-de-donnees.md is out of date: run "
        "`python -c 'from pathlib import Path; from attrition.db.erd import update_markdown; "
        'update_markdown(Path("docs/base-de-donnees.md"))\'`'
    )


def test_every_table_and_column_is_drawn() -> None:
    diagram = render_mermaid(Base.metadata)
    assert diagram.startswith("erDiagram\n")
    for table in Base.metadata.tables.values():
        lines = _entity(diagram, table.name)
        assert [line.split()[1] for line in lines] == [c.name for c in table.columns]


def test_audit_trail_link_and_markers() -> None:
    diagram = render_mermaid(Base.metadata)
    lines = [line.strip() for line in diagram.splitlines()]
    assert 'prediction_inputs ||..o| predictions : "input_id"' in lines
    assert 'model_versions ||..o{ predictions : "model_version_id"' in diagram
    assert 'api_keys |o..o{ prediction_inputs : "api_key_id"' in diagram
    assert 'employees ||--o| survey_responses : "id_employee"' in diagram
    predictions = _entity(diagram, "predictions")
    assert "bigint id PK" in predictions
    assert "bigint input_id FK, UK" in predictions
    assert "integer id_employee PK, FK" in _entity(diagram, "performance_reviews")
    assert 'timestamptz revoked_at "nullable"' in _entity(diagram, "api_keys")
    assert 'genre genre "enum"' in _entity(diagram, "employees")
    relationships = [line for line in diagram.splitlines() if " : " in line]
    fks = sum(len(t.foreign_key_constraints) for t in Base.metadata.tables.values())
    checked = sum(  # references checked by a trigger, drawn as the keys they stand for
        1 for t in Base.metadata.tables.values() for c in t.columns if REFERENCES in c.info
    )
    assert checked == 3
    assert len(relationships) == fks + checked


def test_output_is_deterministic_and_mermaid_safe() -> None:
    first = render_mermaid(Base.metadata)
    assert first == render_mermaid(Base.metadata)
    for line in first.splitlines():
        if line.startswith("        "):
            word = line.split()[0]
            assert re.fullmatch(r"[a-z_][a-z0-9_()]*", word), line


def test_small_metadata_types_and_order() -> None:
    metadata = MetaData()
    Table(
        "b_child",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("parent_id", ForeignKey("a_parent.code"), nullable=False),
        Column("amount", Numeric(7, 3), nullable=True),
        Column("ref", String(4), nullable=False),
        Index("uq_b_child_ref", "ref", unique=True),
    )
    Table("a_parent", metadata, Column("code", String(8), primary_key=True))
    diagram = render_mermaid(metadata)
    assert diagram == (
        "erDiagram\n"
        "    a_parent {\n"
        "        varchar(8) code PK\n"
        "    }\n"
        "    b_child {\n"
        "        integer id PK\n"
        "        varchar(8) parent_id FK\n"
        '        numeric amount "numeric(7,3), nullable"\n'
        "        varchar(4) ref UK\n"
        "    }\n"
        '    a_parent ||..o{ b_child : "parent_id"\n'
    )


def test_update_markdown_rewrites_only_the_block(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    stale = markdown_block("erDiagram\n    old {\n    }\n")
    page.write_text(f"# Titre\n\n{stale}\n\nSuite.\n", encoding="utf-8")
    assert update_markdown(page) is True
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Titre\n\n") and text.endswith(f"{END_MARKER}\n\nSuite.\n")
    assert extract_diagram(text) == render_mermaid()
    assert update_markdown(page) is False


def test_update_markdown_refuses_a_page_without_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Sans diagramme\n", encoding="utf-8")
    with pytest.raises(ValueError, match="markers"):
        update_markdown(page)
    page.write_text(f"{START_MARKER}\npas un bloc\n{END_MARKER}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="fence"):
        update_markdown(page)


def test_write_erd(tmp_path: Path) -> None:
    raw = write_erd(tmp_path / "img" / "erd.mmd")
    assert raw.read_text(encoding="utf-8") == render_mermaid()
    fenced = write_erd(tmp_path / "erd.md")
    assert extract_diagram(f"{START_MARKER}\n{fenced.read_text(encoding='utf-8')}{END_MARKER}") == (
        render_mermaid()
    )
