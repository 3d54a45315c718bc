"""The words people read beside a score: built from the probability and the threshold."""

from __future__ import annotations

import re

import numpy as np
import pytest

from attrition import wording


def test_above_the_threshold_recommends_an_interview_without_saying_probable() -> None:
    reading = wording.read_score(0.326, 0.255)
    assert reading.niveau == "eleve" and reading.decision == "depart"
    assert reading.libelle == "Au-dessus du seuil d'alerte"
    assert "au-dessus du seuil d'alerte : un entretien est recommandé" in reading.texte
    assert "32,6\u00a0%" in reading.texte and "25,5\u00a0%" in reading.texte
    assert "probable" not in reading.texte.lower()


def test_below_the_threshold_asks_for_nothing() -> None:
    middle = wording.read_score(0.15, 0.255)
    low = wording.read_score(0.05, 0.255)
    assert middle.niveau == "moyen" and middle.decision == "reste"
    assert low.niveau == "faible"
    assert (
        "sous le seuil d'alerte" in middle.texte and "entretien est recommandé" not in middle.texte
    )
    assert middle.libelle != low.libelle


def test_base_rate_sentence_comes_from_the_out_of_fold_figures() -> None:
    bands = {"eleve": {"n": 200, "partis": 90}, "moyen": {"n": 300, "partis": 30}}
    high = wording.read_score(0.4, 0.25, bands)
    assert "sur 100 employés signalés à ce niveau, environ 45 sont partis" in high.texte.lower()
    middle = wording.read_score(0.2, 0.25, bands)
    assert "sur 100 employés estimés à ce niveau, environ 10 sont partis" in middle.texte.lower()
    assert "sur 100" not in wording.read_score(0.01, 0.25, bands).texte.lower()


def test_risk_bands_count_the_leavers_per_band() -> None:
    target = np.array([1, 0, 1, 0, 0, 1])
    probability = np.array([0.9, 0.6, 0.3, 0.26, 0.05, 0.01])
    bands = wording.risk_bands(target, probability, 0.5)
    assert bands == {
        "eleve": {"n": 2, "partis": 1},
        "moyen": {"n": 2, "partis": 1},
        "faible": {"n": 2, "partis": 1},
    }


@pytest.mark.parametrize(("code", "label"), [("depart", "Signalé"), ("reste", "Non signalé")])
def test_decision_labels_are_french(code: str, label: str) -> None:
    assert wording.DECISION_LABELS[code] == label
    assert set(wording.RISK_LABELS) == {"faible", "moyen", "eleve"}


def test_counts_agree_with_their_number() -> None:
    assert wording.count(1, "répétition") == "1 répétition"
    assert wording.count(0, "départ") == "0 départ"
    assert wording.count(5, "répétition") == "5 répétitions"
    assert wording.count(214, "fausse alerte") == "214 fausses alertes"
    assert wording.count(1233, "employé resté") == "1\u202f233 employés restés"
    assert wording.count(2, "œil", "yeux") == "2 yeux"


def test_model_card_words_for_people() -> None:
    assert wording.algorithm_label("regression_logistique") == "régression logistique"
    assert wording.algorithm_label("nouvel_algo") == "nouvel algo"
    assert "un départ manqué compte 4 fois plus qu'une fausse alerte" in (
        wording.threshold_meaning(2.0)
    )
    assert "une fausse alerte compte 2 fois plus" in wording.threshold_meaning(0.5**0.5)
    assert wording.threshold_meaning(1.0) == (
        "Seuil choisi pour équilibrer départs manqués et fausses alertes."
    )
    found = wording.detection({"oof": {"confusion": [[1019, 214], [57, 180]]}})
    assert found is not None
    recall, precision, counts = found.sentences()
    assert recall == "Sur 100 départs réels, 76 sont signalés par le modèle."
    assert precision == "Sur 100 employés signalés, 46 sont partis réellement."
    assert counts == (
        "Dans les données historiques, 180 des 237 départs auraient été repérés, au prix de "
        "214 fausses alertes parmi les 1\u202f233 employés restés."
    )
    assert wording.detection({"oof": {}}) is None
    assert wording.detection(None) is None
    assert wording.detection({"oof": {"confusion": [[1, 0], [0, 0]]}}).sentences()[0] == (  # type: ignore[union-attr]
        "Sur 100 départs réels, 0 est signalé par le modèle."
    )
    assert wording.effect(0.3) == "augmente le risque"
    assert wording.effect(-0.3) == "diminue le risque"


def test_a_reading_is_built_once_per_value_shown() -> None:
    # Same percentage shown, same side of the threshold: one shared, immutable reading.
    assert wording.read_score(0.3261, 0.255) is wording.read_score(0.3264, 0.255)
    # Same percentage shown (25,5 %), either side of the threshold: two readings.
    below, above = wording.read_score(0.25495, 0.255), wording.read_score(0.25504, 0.255)
    assert percent_shown(below) == percent_shown(above) == "25,5\u00a0%"
    assert (below.decision, above.decision) == ("reste", "depart")
    assert below is not above


def percent_shown(reading: wording.Reading) -> str:
    found = re.search("départ : ([0-9,]+\u00a0%)", reading.texte)
    assert found is not None
    return found.group(1)
