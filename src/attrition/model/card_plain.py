"""The parts of the model card written for HR users: plain French, counts that agree.

The rest of :mod:`attrition.model.card` is for data scientists; this section comes first and
says the same thing without a technical term (:mod:`attrition.wording` holds the words).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrition import wording
from attrition.model.summary import F_BETA


def times(value: Any, singular: str) -> str:
    """``5 plis``, ``1 répétition``; ``?`` when the number was not recorded."""
    return (
        wording.count(int(value), singular) if isinstance(value, int | float) else f"? {singular}"
    )


def in_short_markdown(metadata: Mapping[str, Any]) -> list[str]:
    """The card's first section, for HR users: plain French, no technical term."""
    lines = [
        "## En bref",
        "",
        f"- Méthode de calcul : {wording.algorithm_label(str(metadata.get('algorithm', '?')))}.",
        f"- Seuil d'alerte : {wording.percent(float(metadata.get('threshold') or 0))}. "
        + wording.threshold_meaning(F_BETA),
    ]
    found = wording.detection(metadata.get("metrics"))
    if found is not None:
        lines += [f"- {sentence}" for sentence in found.sentences()]
        lines.append(
            "- Chaque employé des données historiques est évalué par un modèle entraîné sans "
            "lui, comme le serait un nouvel employé : ce sont des ordres de grandeur, un score "
            "élevé n'est pas une certitude."
        )
    return [
        *lines,
        "",
        "Les sections suivantes donnent le détail technique, pour les data scientists.",
        "",
    ]
