"""The API reference page is generated from the committed OpenAPI export and stays in sync."""

from __future__ import annotations

import json

from attrition.api.openapi_md import extract_block, render_markdown
from attrition.config import PROJECT_ROOT


def test_reference_page_matches_the_openapi_export() -> None:
    spec = json.loads((PROJECT_ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    page = (PROJECT_ROOT / "docs" / "reference-api.md").read_text(encoding="utf-8")
    assert extract_block(page) == render_markdown(spec), (
        "docs/reference-api.md is stale: run "
        "`attrition openapi -o docs/openapi.json --markdown docs/reference-api.md`"
    )


def test_reference_lists_every_operation_and_schema() -> None:
    spec = json.loads((PROJECT_ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
    text = render_markdown(spec)
    for path, item in spec["paths"].items():
        for method in item:
            assert f"#### `{method.upper()} {path}`" in text
    for name in spec["components"]["schemas"]:
        assert f"### {name}\n" in text
    assert "Successful Response" not in text
    assert "| `age` | oui | `integer` | ≥ 16, ≤ 70 |" in text
