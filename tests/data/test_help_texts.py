"""Field help says something the label does not, once, in plain French."""

from __future__ import annotations

import re

import pytest

from attrition.data import vocabulary as voc


@pytest.mark.parametrize("field", voc.FEATURES, ids=lambda f: f.name)
def test_help_adds_to_the_label_and_states_the_range_once(field: voc.Field) -> None:
    text = voc.help_text(field)
    assert text.strip() == text and "  " not in text
    assert text.rstrip(".").lower() != field.label.lower()
    assert not text.lower().startswith(field.label.lower() + ".")
    assert len(re.findall(r"\bde \d+ à \d+", text, re.I)) <= 1
    assert "api" not in text.lower()
    if field.low is not None and field.high is not None:
        assert f"De {voc.plain_number(field.low)} à {voc.plain_number(field.high)}" in text


def test_numbers_in_help_are_plain_for_people() -> None:
    assert voc.plain_number(50000) == "50\u202f000"
    assert voc.plain_number(11.5) == "11,5"
    assert voc.help_text(voc.FEATURES_BY_NAME["revenu_mensuel"]).endswith("De 500 à 50\u202f000.")


def test_optional_fields_say_so() -> None:
    for name in voc.NOT_MODEL_INPUTS:
        assert "facultatif" in voc.help_text(voc.FEATURES_BY_NAME[name]).lower()
