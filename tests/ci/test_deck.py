"""`make slides` builds the deck from committed data only: a fresh clone gets the same deck."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from attrition.config import PROJECT_ROOT


def deck_figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "deck_figures", PROJECT_ROOT / "scripts" / "deck_figures.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["deck_figures"] = module
    spec.loader.exec_module(module)
    return module


def test_deck_regions_come_from_committed_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = deck_figures()
    monkeypatch.setattr(df, "REPORTS", tmp_path / "no-reports")  # as on a fresh clone
    deck = tmp_path / "deck.md"
    deck.write_text((PROJECT_ROOT / "docs" / "presentation" / "deck.md").read_text("utf-8"))
    df.update_deck(deck)
    text = deck.read_text(encoding="utf-8")
    assert "non disponible" not in text
    assert text == (PROJECT_ROOT / "docs" / "presentation" / "deck.md").read_text("utf-8"), (
        "docs/presentation/deck.md ne correspond pas aux données commitées : lancez make slides"
    )


def test_reference_run_states_its_date_commit_and_model() -> None:
    df = deck_figures()
    reference = json.loads(df.REFERENCE.read_text(encoding="utf-8"))
    assert reference["date"] and len(reference["commit"]) >= 7
    assert reference["tests"]["tests"] > 0 and reference["couverture"]["taux"] > 0
    assert reference["fiabilite"]
    text = df.tests()
    assert reference["commit"][:7] in text and "Exécution de référence" in text


def test_deck_says_what_the_threshold_favours_in_words() -> None:
    from attrition import wording
    from attrition.model.summary import F_BETA

    text = (PROJECT_ROOT / "docs" / "presentation" / "deck.md").read_text("utf-8")
    assert "un départ manqué compte 4 fois plus qu'une fausse alerte" in text
    assert wording.threshold_meaning(F_BETA).split(" : ")[1].rstrip(".") in deck_figures().modele()
    assert "critère F2" not in text and "rappel d'abord" not in text
