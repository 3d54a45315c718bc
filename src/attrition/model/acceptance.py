"""The acceptance rule of a new model version, numeric and fixed before any version is compared.

A version may become active only if, on its nested cross-validation (the figures stored with
it by ``attrition train``):

1. its PR-AUC is not below the active version's by more than the active version's interval,
   i.e. not below the lower bound of the active version's 95 % interval;
2. its calibration slope is within :data:`SLOPE_RANGE`;
3. for the fairness audit by genre and by age band, the gap of recall between the best and the
   worst served group does not grow by more than :data:`RECALL_GAP_GROWTH` over the active
   version's;
4. it has those figures at all (a version registered without nested evaluation cannot be
   judged).

Without an active version, rules 2 and 4 apply. A version that was already active once is a
rollback and is not judged again (restoring a known state must stay one command).
``attrition model activate --force --raison``
overrides a refusal; the override and its reason are recorded in the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from attrition.model.uncertainty import recall_gap


def _fr2(value: float) -> str:
    return f"{value:.2f}".replace(".", ",")


#: Accepted range of the calibration slope (1 is perfect; below 1, over-confident).
SLOPE_RANGE: Final = (0.8, 1.25)
#: Largest accepted growth of the recall gap between groups (absolute, 0.10 = 10 points).
RECALL_GAP_GROWTH: Final = 0.10
FAIRNESS_ATTRIBUTES: Final = (("genre", "genre"), ("age", "tranche d'âge"))
RULE_TEXT: Final = (
    "Une nouvelle version n'est activée que si, sur sa validation croisée imbriquée : "
    "(1) sa PR-AUC n'est pas inférieure à la borne basse de l'intervalle à 95 % de la PR-AUC "
    "de la version active ; (2) sa pente de calibration est comprise entre "
    f"{_fr2(SLOPE_RANGE[0])} et {_fr2(SLOPE_RANGE[1])} ; (3) l'écart de rappel entre groupes "
    "(genre, tranche d'âge) ne s'est pas creusé de plus de "
    f"{round(100 * RECALL_GAP_GROWTH)} points par rapport à la version active ; (4) ces "
    "chiffres existent. Un retour à une version déjà servie n'y est pas soumis. Passer "
    "outre exige `--force` et une raison (`--raison`), enregistrées dans le registre."
)


@dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`check`: accepted, or the French reasons of the refusal."""

    refusals: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return not self.refusals


def figures_of(metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """The nested figures stored with a version: PR-AUC interval, slope, recall gaps."""
    cv = metrics.get("cv") or {}
    selected = metrics.get("selected")
    honest = ((cv.get("candidates") or {}).get(selected) or {}).get("honest") or {}
    figures = honest.get("figures") or {}
    pr_auc = figures.get("pr_auc") or {}
    slope = (honest.get("calibration") or {}).get("slope")
    if pr_auc.get("value") is None or slope is None:
        return None
    fairness = honest.get("fairness") or {}
    return {
        "pr_auc": pr_auc,
        "slope": float(slope),
        "recall_gap": {
            attribute: recall_gap(fairness.get(attribute, []))
            for attribute, _ in FAIRNESS_ATTRIBUTES
        },
    }


def _num(value: float) -> str:
    return f"{value:.3f}".replace(".", ",")


def check(candidate: Mapping[str, Any], active: Mapping[str, Any] | None) -> Verdict:
    """Apply the rule to the metrics of a candidate version against the active one's.

    Parameters
    ----------
    candidate, active:
        The ``metrics`` of the registry rows (``active`` is None when no version is active,
        or when the candidate is the active one).
    """
    mine = figures_of(candidate)
    if mine is None:
        return Verdict(
            [
                "cette version n'a pas de validation croisée imbriquée enregistrée "
                "(PR-AUC avec intervalle, pente de calibration) : elle ne peut pas être jugée"
            ]
        )
    refusals: list[str] = []
    low, high = SLOPE_RANGE
    if not low <= mine["slope"] <= high:
        refusals.append(
            f"pente de calibration {_num(mine['slope'])} hors de l'intervalle "
            f"[{_num(low)} ; {_num(high)}]"
        )
    checks: dict[str, Any] = {"candidate": mine}
    theirs = None if active is None else figures_of(active)
    if theirs is not None:
        checks["active"] = theirs
        floor = theirs["pr_auc"]["low"]
        if floor is not None and mine["pr_auc"]["value"] < floor:
            refusals.append(
                f"PR-AUC {_num(mine['pr_auc']['value'])} inférieure à la borne basse "
                f"{_num(floor)} de l'intervalle à 95 % de la version active "
                f"({_num(theirs['pr_auc']['value'])})"
            )
        for attribute, label in FAIRNESS_ATTRIBUTES:
            new, old = mine["recall_gap"][attribute], theirs["recall_gap"][attribute]
            if new is not None and old is not None and new - old > RECALL_GAP_GROWTH:
                refusals.append(
                    f"écart de rappel par {label} passé de {_num(old)} à {_num(new)} "
                    f"(plus de {round(100 * RECALL_GAP_GROWTH)} points)"
                )
    return Verdict(refusals, checks)
