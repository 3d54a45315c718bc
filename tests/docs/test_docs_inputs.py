"""docs/rgpd.md and docs/modele.md say the same thing about the model's inputs (one source)."""

from __future__ import annotations

import re

from attrition.config import PROJECT_ROOT
from attrition.data import vocabulary as voc

DOCS = PROJECT_ROOT / "docs"


def region(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->", text, re.S)
    assert match is not None, f"région « {name} » absente"
    return match.group(1).strip()


def test_inputs_paragraph_names_the_unused_fields_as_optional() -> None:
    text = voc.inputs_markdown()
    assert "`genre`" in text and "`statut_marital`" in text
    assert "facultatifs" in text
    assert f"{len(voc.MODEL_INPUTS)} champs" in text
    assert all(
        voc.FEATURES_BY_NAME[name].label.lower() in text.lower() for name in voc.MODEL_INPUTS
    )


def test_rgpd_page_renders_the_inputs_from_the_vocabulary() -> None:
    page = (DOCS / "rgpd.md").read_text(encoding="utf-8")
    assert region(page, "entrees") == voc.inputs_markdown().strip(), (
        "docs/rgpd.md : relancez .venv/bin/python scripts/sync_docs.py"
    )
    assert "font partie des variables du modèle" not in page


def test_model_card_renders_the_same_paragraph() -> None:
    card = (DOCS / "modele.md").read_text(encoding="utf-8")
    assert voc.inputs_markdown().strip() in card
