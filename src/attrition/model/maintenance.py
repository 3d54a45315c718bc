"""When a served model needs retraining, judged on what happened to the employees it scored.

The thresholds live in the model layer so that the model card states the very numbers the
realized-performance report (:mod:`attrition.monitoring.performance`) applies.
"""

from __future__ import annotations

from typing import Final

#: Default horizon: a prediction is judged on departures within a year.
DEFAULT_HORIZON_DAYS: Final = 365
#: Below these counts of resolved predictions, or of leavers among them, no verdict.
MIN_RESOLVED: Final = 100
MIN_LEAVERS: Final = 10
#: Largest accepted gap between the observed rate and the mean predicted probability.
CALIBRATION_GAP_MAX: Final = 0.05
#: Floors for versions registered without nested intervals.
PRECISION_FLOOR: Final = 0.40
RECALL_FLOOR: Final = 0.60
RULE_TEXT: Final = (
    f"Avec au moins {MIN_RESOLVED} prédictions résolues dont {MIN_LEAVERS} départs, une "
    "version est à réentraîner si sa précision ou son rappel réalisés passent sous la borne "
    "basse de l'intervalle à 95 % de sa validation croisée imbriquée (à défaut : "
    f"{round(100 * PRECISION_FLOOR)} % et {round(100 * RECALL_FLOOR)} %), ou si le taux de "
    "départ observé s'écarte de plus de "
    f"{round(100 * CALIBRATION_GAP_MAX)} points de la probabilité moyenne prédite."
)
