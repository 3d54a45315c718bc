"""Realized performance: past predictions compared with what actually happened to the employees.

HR records outcomes (``employee_outcomes``: left on a date, or still present on a date). For
each model version, the first prediction of each identified employee is *resolved* once the
horizon after it has passed or the employee has left:

- left on or before ``prediction date + horizon``: a departure (1);
- known present on or after ``prediction date + horizon`` (or left only after it): stayed (0);
- otherwise still pending, and left out.

On the resolved predictions: precision of the flags (share of flagged employees who left),
recall (share of leavers who were flagged), mean predicted probability against the observed
rate (calibration-in-the-large). A version needs retraining when, with enough resolved
predictions, its realized precision or recall falls below the lower bound of the 95 % interval
its nested cross-validation gave (fixed floors for versions without one), or when the observed
rate is more than :data:`CALIBRATION_GAP_MAX` away from the mean predicted probability.

Caveat, stated in the model card: HR acts on flags (retention interviews), which may prevent
some flagged departures, so realized precision is a lower bound of what the model detects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from attrition.model.maintenance import (
    CALIBRATION_GAP_MAX,
    DEFAULT_HORIZON_DAYS,
    MIN_LEAVERS,
    MIN_RESOLVED,
    PRECISION_FLOOR,
    RECALL_FLOOR,
    RULE_TEXT,
)

STATUS_LABELS: Final = {
    "donnees_insuffisantes": "Données insuffisantes",
    "conforme": "Conforme à l'évaluation",
    "reentrainer": "Réentraînement à envisager",
}

_PREDICTIONS_SQL = """
WITH first_prediction AS (
    SELECT DISTINCT ON (p.model_version_id, i.id_employee)
           p.model_version_id, i.id_employee, i.received_at, p.probability, p.label
    FROM predictions p JOIN prediction_inputs i ON i.id = p.input_id
    WHERE i.id_employee IS NOT NULL
    ORDER BY p.model_version_id, i.id_employee, i.received_at
)
SELECT f.id_employee, f.received_at, f.probability, f.label::text AS label,
       v.version, v.metrics,
       (SELECT min(o.date_constat) FROM employee_outcomes o
         WHERE o.id_employee = f.id_employee AND o.statut = 'parti'
           AND o.date_constat >= (f.received_at AT TIME ZONE 'UTC')::date) AS left_on,
       (SELECT max(o.date_constat) FROM employee_outcomes o
         WHERE o.id_employee = f.id_employee AND o.statut = 'present') AS present_on
FROM first_prediction f JOIN model_versions v ON v.id = f.model_version_id
ORDER BY v.id, f.id_employee
"""


@dataclass(frozen=True, slots=True)
class VersionPerformance:
    """Realized figures of one model version (``None`` when undefined)."""

    model_version: str
    predictions: int
    resolues: int
    en_attente: int
    departs: int
    signales: int
    vrais_positifs: int
    precision: float | None
    rappel: float | None
    probabilite_moyenne: float | None
    taux_observe: float | None
    ecart_calibration: float | None
    precision_plancher: float
    rappel_plancher: float
    statut: str
    libelle_statut: str
    raisons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """:func:`performance_report`: one entry per model version that scored identified employees."""

    horizon_jours: int
    calcule_le: datetime
    regle: str
    versions: list[VersionPerformance]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _floors(metrics: dict[str, Any]) -> tuple[float, float]:
    """Lower bounds of the version's nested precision and recall intervals, or the floors."""
    cv = metrics.get("cv") or {}
    selected = (cv.get("candidates") or {}).get(metrics.get("selected")) or {}
    figures = (selected.get("honest") or {}).get("figures") or {}
    precision = (figures.get("precision") or {}).get("low")
    recall = (figures.get("recall") or {}).get("low")
    return (
        PRECISION_FLOOR if precision is None else float(precision),
        RECALL_FLOOR if recall is None else float(recall),
    )


def outcome_of(
    received_at: datetime, left_on: date | None, present_on: date | None, horizon: timedelta
) -> int | None:
    """1 if the employee left within the horizon, 0 if known to stay past it, else None."""
    end = received_at.astimezone(UTC).date() + horizon
    if left_on is not None and left_on <= end:
        return 1
    if (present_on is not None and present_on >= end) or left_on is not None:
        return 0
    return None


def summarise(
    version: str, metrics: dict[str, Any], rows: list[tuple[float, bool, int | None]]
) -> VersionPerformance:
    """The figures of one version from ``(probability, flagged, outcome)`` rows."""
    resolved = [(p, f, o) for p, f, o in rows if o is not None]
    leavers = sum(o for _, _, o in resolved)
    flagged = sum(1 for _, f, _ in resolved if f)
    true_positives = sum(1 for _, f, o in resolved if f and o)
    mean_predicted = sum(p for p, _, _ in resolved) / len(resolved) if resolved else None
    observed = leavers / len(resolved) if resolved else None
    precision = true_positives / flagged if flagged else None
    recall = true_positives / leavers if leavers else None
    gap = None if observed is None or mean_predicted is None else observed - mean_predicted
    precision_floor, recall_floor = _floors(metrics)
    reasons: list[str] = []
    if len(resolved) < MIN_RESOLVED or leavers < MIN_LEAVERS:
        status = "donnees_insuffisantes"
        reasons.append(
            f"{len(resolved)} prédiction(s) résolue(s) dont {leavers} départ(s) : il en faut "
            f"au moins {MIN_RESOLVED} dont {MIN_LEAVERS} départs pour conclure."
        )
    else:
        if precision is not None and precision < precision_floor:
            reasons.append(
                f"précision réalisée {100 * precision:.1f} % sous le plancher "
                f"{100 * precision_floor:.1f} %"
            )
        if recall is not None and recall < recall_floor:
            reasons.append(
                f"rappel réalisé {100 * recall:.1f} % sous le plancher {100 * recall_floor:.1f} %"
            )
        if gap is not None and abs(gap) > CALIBRATION_GAP_MAX:
            reasons.append(
                f"taux observé et probabilité moyenne écartés de {100 * abs(gap):.1f} points"
            )
        status = "reentrainer" if reasons else "conforme"
    return VersionPerformance(
        model_version=version,
        predictions=len(rows),
        resolues=len(resolved),
        en_attente=len(rows) - len(resolved),
        departs=leavers,
        signales=flagged,
        vrais_positifs=true_positives,
        precision=precision,
        rappel=recall,
        probabilite_moyenne=mean_predicted,
        taux_observe=observed,
        ecart_calibration=gap,
        precision_plancher=precision_floor,
        rappel_plancher=recall_floor,
        statut=status,
        libelle_statut=STATUS_LABELS[status],
        raisons=reasons,
    )


async def performance_report(
    conn: AsyncConnection[Any], *, horizon_days: int = DEFAULT_HORIZON_DAYS
) -> PerformanceReport:
    """Compare every version's past predictions of identified employees with their outcomes."""
    horizon = timedelta(days=horizon_days)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_PREDICTIONS_SQL)
        rows = await cur.fetchall()
    grouped: dict[str, tuple[dict[str, Any], list[tuple[float, bool, int | None]]]] = {}
    for row in rows:
        _, items = grouped.setdefault(row["version"], (row["metrics"] or {}, []))
        items.append(
            (
                float(row["probability"]),
                row["label"] == "depart",
                outcome_of(row["received_at"], row["left_on"], row["present_on"], horizon),
            )
        )
    return PerformanceReport(
        horizon_jours=horizon_days,
        calcule_le=datetime.now(UTC),
        regle=RULE_TEXT,
        versions=[summarise(v, m, items) for v, (m, items) in grouped.items()],
    )
