"""The words people read beside a score, in one place for the web pages, the CLI and the API.

A probability of 32.6 % with the alert threshold at 25.5 % is not "departure probable": it
means the employee is above the level from which the service recommends an interview. So
the wording is built from the probability and what the threshold means, and, when the model
version stores them, from its out-of-fold figures (how many employees scored at that level
actually left). Machine codes (``depart``/``reste``, ``faible``/``moyen``/``eleve``) stay
as they are in the API and the database; only what people read is here. No FastAPI import.
"""

from __future__ import annotations

import functools
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


def number(value: Any, digits: int = 2) -> str:
    """A number the French way (``1\u202f234``, ``0,50``); ``oui``/``non``; ``—`` when missing."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    if isinstance(value, float):
        return f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")
    return str(value)


def value_text(value: Any) -> str:
    """An input's value as people read it: ``3.0`` -> ``3``, ``11.5`` -> ``11,50``, oui/non."""
    if isinstance(value, float) and value.is_integer():
        return number(int(value))
    return number(value)


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
    return _reading(
        percent(probability),
        level,
        decision(probability, threshold),
        threshold,
        base_rate(level, bands),
    )


@functools.lru_cache(maxsize=4096)
def _reading(
    shown: str, level: str, decided: str, threshold: float, out_of_100: int | None
) -> Reading:
    """The reading of a score as people see it (``shown``: its rounded percentage).

    What people read depends only on these few values (a thousand percentages, three
    levels, one threshold per model version): each reading is built once and shared (it is
    immutable), instead of three sentences and a dataclass per prediction (1 µs of 2).
    """
    text = f"Probabilité estimée de départ : {shown}, {ADVICE[level]}"
    text += f" (seuil d'alerte : {percent(threshold)})."
    if out_of_100 is not None:
        who = "signalés" if level == "eleve" else "estimés"
        text += f" Sur 100 employés {who} à ce niveau, environ {out_of_100} sont partis."
    return Reading(
        niveau=level,
        decision=decided,
        libelle=RISK_LABELS[level],
        texte=text,
        sur_100=out_of_100,
    )


def bands_of(metrics: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The out-of-fold risk bands stored with a model version, if it has them."""
    oof = (metrics or {}).get("oof")
    bands = oof.get("risk_bands") if isinstance(oof, Mapping) else None
    return bands if isinstance(bands, Mapping) else None


# ---- the model card, for people ---------------------------------------------------------

#: Algorithm codes (API, registry) -> what people read.
ALGORITHM_LABELS: Final[dict[str, str]] = {
    "regression_logistique": "régression logistique",
    "gradient_boosting": "gradient boosting (arbres de décision successifs)",
    "foret_aleatoire": "forêt aléatoire",
}


def algorithm_label(code: str) -> str:
    """``regression_logistique`` -> ``régression logistique``; an unknown code, spaced out."""
    return ALGORITHM_LABELS.get(code, code.replace("_", " "))


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 répétition``, ``5 répétitions``, ``1\u202f233 fausses alertes``.

    French: 0 and 1 take the singular; without ``plural``, every word takes an ``s``.
    """
    words = singular if abs(n) < 2 else plural or " ".join(f"{w}s" for w in singular.split())
    return f"{n:,}".replace(",", "\u202f") + f" {words}"


def threshold_meaning(beta: float) -> str:
    """What an F-beta threshold favours, in words (beta = 2: a missed leaver weighs 4 times)."""
    weight = beta**2
    times = f"{weight:g}".replace(".", ",")
    if weight > 1:
        return (
            "Seuil choisi pour repérer la plupart des départs, quitte à signaler des employés "
            f"qui restent : un départ manqué compte {times} fois plus qu'une fausse alerte."
        )
    return (
        "Seuil choisi pour limiter les fausses alertes, quitte à manquer des départs : une "
        f"fausse alerte compte {f'{1 / weight:g}'.replace('.', ',')} fois plus qu'un départ "
        "manqué."
        if weight < 1
        else "Seuil choisi pour équilibrer départs manqués et fausses alertes."
    )


@dataclass(frozen=True, slots=True)
class Detection:
    """What the threshold catches, out of fold: counts from the confusion matrix."""

    leavers: int
    caught: int
    stayers: int
    false_alarms: int

    @property
    def recall_per_100(self) -> int:
        return round(100 * self.caught / self.leavers) if self.leavers else 0

    @property
    def precision_per_100(self) -> int:
        flagged = self.caught + self.false_alarms
        return round(100 * self.caught / flagged) if flagged else 0

    def sentences(self) -> tuple[str, str, str]:
        """Recall, precision and the raw counts, each as one French sentence."""
        r, p = self.recall_per_100, self.precision_per_100
        return (
            f"Sur 100 départs réels, {r} {'sont signalés' if r > 1 else 'est signalé'} "
            "par le modèle.",
            f"Sur 100 employés signalés, {p} {'sont partis' if p > 1 else 'est parti'} réellement.",
            f"Dans les données historiques, {self.caught} des {count(self.leavers, 'départ')} "
            f"auraient été repérés, au prix de {count(self.false_alarms, 'fausse alerte')} "
            f"parmi les {count(self.stayers, 'employé resté', 'employés restés')}.",
        )


def detection(metrics: Mapping[str, Any] | None) -> Detection | None:
    """The out-of-fold confusion matrix stored with a version (``metrics.oof.confusion``)."""
    oof = (metrics or {}).get("oof")
    matrix = oof.get("confusion") if isinstance(oof, Mapping) else None
    try:
        (kept, false_alarms), (missed, caught) = matrix  # type: ignore[misc]
        cells = [int(x) for x in (kept, false_alarms, missed, caught)]
    except (TypeError, ValueError):
        return None
    return Detection(
        leavers=cells[2] + cells[3],
        caught=cells[3],
        stayers=cells[0] + cells[1],
        false_alarms=cells[1],
    )


def effect(contribution: float) -> str:
    """A factor's direction, in words (the amount stays in the technical details)."""
    return "augmente le risque" if contribution > 0 else "diminue le risque"


def factor_line(label: str, value: Any, contribution: float) -> str:
    """One factor in a sentence: ``Participe au PEE (…) : non (augmente le risque)``.

    ``label`` and ``value`` are the plain ones (:func:`attrition.model.features.plain_factor`),
    as on the web result page, which shows the same three parts in its table.
    """
    return f"{label} : {value_text(value)} ({effect(contribution)})"
