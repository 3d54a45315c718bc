"""The words people read beside a score, in one place for the web pages, the CLI and the API.

A probability of 32.6 % with the alert threshold at 25.5 % is not "departure probable": it
means the employee is above the level from which the service recommends an interview. So
the wording is built from the probability and what the threshold means, and, when the model
version stores them, from its out-of-fold figures (how many employees scored at that level
actually left). Machine codes (``depart``/``reste``, ``faible``/``moyen``/``eleve``) stay
as they are in the API and the database; only what people read is here. No FastAPI import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

#: Decision codes -> what people read.
DECISION_LABELS: Final[dict[str, str]] = {"depart": "Signalé", "reste": "Non signalé"}

#: Risk level codes -> what people read (never "départ probable": see the module docstring).
RISK_LABELS: Final[dict[str, str]] = {
    "eleve": "Au-dessus du seuil d'alerte",
    "moyen": "Sous le seuil d'alerte, à surveiller",
    "faible": "Nettement sous le seuil d'alerte",
}

#: What to do at each level.
ADVICE: Final[dict[str, str]] = {
    "eleve": "au-dessus du seuil d'alerte : un entretien est recommandé",
    "moyen": "sous le seuil d'alerte : aucune action n'est demandée, à suivre lors du "
    "prochain entretien annuel",
    "faible": "nettement sous le seuil d'alerte : aucune action n'est demandée",
}

#: How the three levels are cut, for legends and API descriptions.
LEVELS_RULE: Final = (
    "nettement sous le seuil : probabilité inférieure à la moitié du seuil d'alerte ; "
    "sous le seuil : entre la moitié du seuil et le seuil ; au-dessus : probabilité au moins "
    "égale au seuil d'alerte."
)

#: Below this many employees in a band, the "out of 100" sentence would say little: omitted.
MIN_BAND = 20


def risk_level(probability: float, threshold: float) -> str:
    """``eleve`` at or above the threshold, ``moyen`` from half of it, ``faible`` below."""
    if probability >= threshold:
        return "eleve"
    if probability >= threshold / 2:
        return "moyen"
    return "faible"


def decision(probability: float, threshold: float) -> str:
    """``depart`` (flagged) at or above the threshold, ``reste`` below."""
    return "depart" if probability >= threshold else "reste"


def percent(value: float, digits: int = 1) -> str:
    """``0.326`` -> ``32,6 %`` (decimal comma, no-break space before the sign)."""
    return f"{100 * value:.{digits}f}".replace(".", ",") + "\u00a0%"


def risk_bands(
    target: NDArray[np.integer[Any]] | list[int],
    probability: NDArray[np.floating[Any]],
    threshold: float,
) -> dict[str, dict[str, int]]:
    """Employees and leavers per risk level, from out-of-fold probabilities (model card).

    Parameters
    ----------
    target:
        1 if the employee left, 0 otherwise.
    probability:
        Out-of-fold probability of each employee (never from a model that saw them).
    threshold:
        The alert threshold of the version.

    Returns
    -------
    dict
        ``{"eleve": {"n": ..., "partis": ...}, "moyen": ..., "faible": ...}``.
    """
    y = np.asarray(target, dtype=np.int64)
    p = np.asarray(probability, dtype=np.float64)
    levels = np.array([risk_level(float(x), threshold) for x in p], dtype=object)
    return {
        level: {"n": int((levels == level).sum()), "partis": int(y[levels == level].sum())}
        for level in ("eleve", "moyen", "faible")
    }


@dataclass(frozen=True, slots=True)
class Reading:
    """How to read one score: codes for machines, sentences for people."""

    niveau: str
    decision: str
    libelle: str
    texte: str
    sur_100: int | None


def base_rate(level: str, bands: Mapping[str, Any] | None) -> int | None:
    """Of 100 employees scored at ``level`` (out of fold), how many left; None if unknown."""
    band = (bands or {}).get(level)
    if not isinstance(band, Mapping):
        return None
    n, left = band.get("n"), band.get("partis")
    if not isinstance(n, int) or not isinstance(left, int) or n < MIN_BAND:
        return None
    return round(100 * left / n)


def read_score(
    probability: float, threshold: float, bands: Mapping[str, Any] | None = None
) -> Reading:
    """The reading of a score for people, from the probability and the threshold's meaning.

    ``bands`` are the version's out-of-fold figures (:func:`risk_bands`, stored in the model
    metadata under ``metrics.oof.risk_bands``); without them the "out of 100" sentence is left
    out rather than guessed.
    """
    level = risk_level(probability, threshold)
    text = f"Probabilité estimée de départ : {percent(probability)}, {ADVICE[level]}"
    text += f" (seuil d'alerte : {percent(threshold)})."
    out_of_100 = base_rate(level, bands)
    if out_of_100 is not None:
        who = "signalés" if level == "eleve" else "estimés"
        text += f" Sur 100 employés {who} à ce niveau, environ {out_of_100} sont partis."
    return Reading(
        niveau=level,
        decision=decision(probability, threshold),
        libelle=RISK_LABELS[level],
        texte=text,
        sur_100=out_of_100,
    )


def bands_of(metrics: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The out-of-fold risk bands stored with a model version, if it has them."""
    oof = (metrics or {}).get("oof")
    bands = oof.get("risk_bands") if isinstance(oof, Mapping) else None
    return bands if isinstance(bands, Mapping) else None
