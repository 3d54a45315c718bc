"""Input drift: do the employees scored lately look like the ones the model learnt from?

Recent inputs (the typed columns of ``prediction_inputs``) are compared with the training
population (the ``employee_features`` view), feature by feature:

* the population stability index, ``PSI = sum((a - e) * ln(a / e))`` over bins, with ``e``
  the training share and ``a`` the recent share of each bin (both floored at
  :data:`EPSILON` so that an empty bin does not give an infinite index). Numbers are cut at
  the deciles of the training data (ties merged, so a 1-4 scale gets its own values as
  bins), with one open bin below and above; categories and booleans use their values;
* the share of recent inputs outside the training range (a number below its minimum or above
  its maximum, a category never seen in training);
* the predicted-positive rate: the share of recent predictions labelled ``depart`` against
  the share of training employees whose probability under the active model reaches its
  threshold (the rate the model flags on the population it learnt from; the observed
  attrition rate is reported beside it for reference). Its PSI uses the same scale.

PSI below 0.1 is stable, from 0.1 to 0.25 "à surveiller", from 0.25 "action requise": the
retraining protocol of the model card (docs/modele.md) then applies.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from attrition.data import vocabulary as voc
from attrition.model.features import columns_from_records
from attrition.model.runtime import LoadedModel

EPSILON: Final = 1e-4
N_BINS: Final = 10
#: Default window of ``attrition monitor drift``, of GET /v1/monitoring/drift and of the web page.
DEFAULT_WINDOW: Final = timedelta(days=30)
WATCH: Final = 0.1
ACTION: Final = 0.25
#: Fewer recent inputs than this and the PSI is mostly sampling noise: no verdict.
MIN_RECENT: Final = 30
#: Most recent inputs read for one report (the newest first).
MAX_RECENT: Final = 100_000

STABLE = "stable"
TO_WATCH = "a_surveiller"
ACTION_REQUIRED = "action_requise"
INSUFFICIENT = "donnees_insuffisantes"
STATUS_LABELS: Final[dict[str, str]] = {
    STABLE: "stable",
    TO_WATCH: "à surveiller",
    ACTION_REQUIRED: "action requise",
    INSUFFICIENT: "données insuffisantes",
}
_RANK = {INSUFFICIENT: -1, STABLE: 0, TO_WATCH: 1, ACTION_REQUIRED: 2}

PROTOCOL: Final = (
    "protocole de réentraînement de la fiche du modèle (docs/modele.md, "
    "« Protocole de réentraînement »)"
)


def psi_status(psi: float) -> str:
    """``stable`` below 0.1, ``a_surveiller`` below 0.25, ``action_requise`` from 0.25."""
    if psi >= ACTION:
        return ACTION_REQUIRED
    if psi >= WATCH:
        return TO_WATCH
    return STABLE


def psi(expected: NDArray[np.float64], actual: NDArray[np.float64]) -> float:
    """Population stability index of two share vectors over the same bins."""
    e = np.maximum(expected, EPSILON)
    a = np.maximum(actual, EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True, slots=True)
class Bin:
    """One bin: its French label, the training share and the recent share."""

    libelle: str
    reference: float
    recent: float


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """The drift of one input feature."""

    variable: str
    libelle: str
    type: str
    psi: float
    statut: str
    hors_domaine: float
    classes: list[Bin]


@dataclass(frozen=True, slots=True)
class PositiveRate:
    """Predicted-positive rate, recent against reference, with the training attrition rate."""

    reference: float | None
    recent: float | None
    psi: float | None
    statut: str
    taux_depart_observe: float
    reference_definition: str = (
        "part des employés des données d'entraînement dont la probabilité, selon le modèle "
        "actif, atteint son seuil"
    )


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Drift of the recent inputs against the training data, with a verdict and what to do."""

    depuis: datetime | None
    jusqu_a: datetime | None
    n_reference: int
    n_recent: int
    model_version: str | None
    seuil: float | None
    statut: str
    libelle_statut: str
    message: str
    taux_positifs: PositiveRate
    variables: list[FeatureDrift] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").replace(".", ",")


def _numeric_bins(
    reference: NDArray[np.float64], recent: NDArray[np.float64]
) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64], float]:
    quantiles = np.quantile(reference, np.linspace(0, 1, N_BINS + 1)[1:-1])
    edges = np.unique(quantiles)
    # Bin i holds edges[i-1] < x <= edges[i]; the last bin is above the last edge.
    count = len(edges) + 1
    e = np.bincount(np.searchsorted(edges, reference, side="left"), minlength=count)
    a = np.bincount(np.searchsorted(edges, recent, side="left"), minlength=count)
    labels = [f"≤ {_fmt(edges[0])}"]
    labels += [f"]{_fmt(lo)} ; {_fmt(hi)}]" for lo, hi in itertools.pairwise(edges)]
    labels.append(f"> {_fmt(edges[-1])}")
    outside = (
        float(np.mean((recent < reference.min()) | (recent > reference.max())))
        if len(recent)
        else 0.0
    )
    return labels, e / max(len(reference), 1), a / max(len(recent), 1), outside


def _category_bins(
    values: tuple[Any, ...], labels: list[str], reference: Sequence[Any], recent: Sequence[Any]
) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64], float]:
    index = {value: i for i, value in enumerate(values)}
    other = len(values)  # anything outside the vocabulary
    e = np.bincount([index.get(v, other) for v in reference], minlength=other + 1)
    a = np.bincount([index.get(v, other) for v in recent], minlength=other + 1)
    seen = {v for v, n in zip(values, e, strict=False) if n > 0}
    outside = float(np.mean([v not in seen for v in recent])) if len(recent) else 0.0
    if e[other] == 0 and a[other] == 0:
        e, a = e[:other], a[:other]
    else:
        labels = [*labels, "autre"]
    return labels, e / max(len(reference), 1), a / max(len(recent), 1), outside


def feature_drift(
    feature: voc.Field, reference: Sequence[Any], recent: Sequence[Any], *, enough: bool
) -> FeatureDrift:
    """PSI, bins and out-of-range share of one feature."""
    if feature.kind == "bool":
        labels, e, a, outside = _category_bins(
            (False, True), ["non", "oui"], [bool(v) for v in reference], [bool(v) for v in recent]
        )
        kind = "booléen"
    elif feature.kind == "category":
        labels, e, a, outside = _category_bins(
            feature.categories, list(feature.categories), reference, recent
        )
        kind = "catégorie"
    else:
        labels, e, a, outside = _numeric_bins(
            np.asarray(reference, dtype=np.float64), np.asarray(recent, dtype=np.float64)
        )
        kind = "numérique"
    value = psi(e, a) if len(recent) else 0.0
    return FeatureDrift(
        variable=feature.name,
        libelle=feature.label,
        type=kind,
        psi=round(value, 6),
        statut=psi_status(value) if enough else INSUFFICIENT,
        hors_domaine=round(outside, 6),
        classes=[
            Bin(label, round(float(x), 6), round(float(y), 6))
            for label, x, y in zip(labels, e, a, strict=True)
        ],
    )


def _message(status: str, features: Sequence[FeatureDrift], n_recent: int) -> str:
    if status == INSUFFICIENT:
        return (
            f"Trop peu d'entrées récentes ({n_recent}, il en faut au moins {MIN_RECENT}) pour "
            "conclure : élargissez la période."
        )
    if status == STABLE:
        return (
            "Les entrées récentes ressemblent aux données d'entraînement : PSI inférieur à 0,1 "
            "pour chaque variable et pour le taux de prédictions positives."
        )
    names = ", ".join(f.libelle for f in features if f.statut == status) or "taux de positifs"
    if status == TO_WATCH:
        return (
            f"Dérive modérée (PSI entre 0,1 et 0,25) : {names}. À surveiller : si elle persiste "
            f"ou s'accentue, appliquez le {PROTOCOL}."
        )
    return (
        f"Dérive importante (PSI ≥ 0,25) : {names}. Action requise : vérifiez d'abord la "
        f"qualité des entrées (erreur de saisie, changement de codage), puis appliquez le "
        f"{PROTOCOL} ; les scores sont moins fiables tant que le modèle n'est pas revu."
    )


def compute_drift(
    reference: Sequence[Mapping[str, Any]],
    recent: Sequence[Mapping[str, Any]],
    *,
    reference_positive_rate: float | None,
    recent_labels: Sequence[str],
    observed_attrition_rate: float,
    since: datetime | None = None,
    until: datetime | None = None,
    model_version: str | None = None,
    threshold: float | None = None,
) -> DriftReport:
    """Compare ``recent`` rows with ``reference`` rows (both: one mapping per employee).

    Parameters
    ----------
    reference:
        Training rows holding every field of :data:`vocabulary.FEATURE_NAMES`.
    recent:
        Recent model inputs, same fields.
    reference_positive_rate:
        Share of the reference flagged by the active model (``None`` without a model).
    recent_labels:
        Recorded decisions (``depart`` / ``reste``) of the recent predictions.
    observed_attrition_rate:
        Share of the reference that left, reported for comparison.

    Returns
    -------
    DriftReport
        Features sorted by decreasing PSI; the verdict is the worst status.
    """
    enough = len(recent) >= MIN_RECENT
    features = [
        feature_drift(f, _given(reference, f.name), _given(recent, f.name), enough=enough)
        for f in voc.FEATURES
    ]
    features.sort(key=lambda f: f.psi, reverse=True)
    recent_rate = (
        sum(label == "depart" for label in recent_labels) / len(recent_labels)
        if recent_labels
        else None
    )
    rate_psi = None
    rate_status = INSUFFICIENT
    if reference_positive_rate is not None and recent_rate is not None:
        rate_psi = psi(
            np.array([1 - reference_positive_rate, reference_positive_rate]),
            np.array([1 - recent_rate, recent_rate]),
        )
        rate_status = psi_status(rate_psi) if enough else INSUFFICIENT
    if enough:
        status = max([f.statut for f in features] + [STABLE], key=_RANK.__getitem__)
        if rate_status != INSUFFICIENT and _RANK[rate_status] > _RANK[status]:
            status = rate_status
    else:
        status = INSUFFICIENT
    return DriftReport(
        depuis=since,
        jusqu_a=until,
        n_reference=len(reference),
        n_recent=len(recent),
        model_version=model_version,
        seuil=threshold,
        statut=status,
        libelle_statut=STATUS_LABELS[status],
        message=_message(status, features, len(recent)),
        taux_positifs=PositiveRate(
            reference=_round(reference_positive_rate),
            recent=_round(recent_rate),
            psi=_round(rate_psi),
            statut=rate_status,
            taux_depart_observe=round(observed_attrition_rate, 6),
        ),
        variables=features,
    )


def _given(rows: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    # An optional field left out (NULL) is not a value outside the domain: it is skipped.
    return [r[name] for r in rows if r[name] is not None]


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 6)


_COLUMNS = ", ".join(voc.FEATURE_NAMES)
_REFERENCE_SQL = f"SELECT {_COLUMNS}, {voc.TARGET} FROM employee_features"  # noqa: S608
_RECENT_SQL = (
    "SELECT "  # noqa: S608 - fixed column names from the vocabulary
    + ", ".join(f"i.{name}" for name in voc.FEATURE_NAMES)
    + ", p.label FROM prediction_inputs i JOIN predictions p ON p.input_id = i.id "
    "WHERE i.received_at >= %(since)s "
    "AND (%(until)s::timestamptz IS NULL OR i.received_at < %(until)s::timestamptz) "
    "ORDER BY i.id DESC LIMIT %(limit)s"
)


async def drift_report(
    conn: AsyncConnection[Any],
    *,
    since: datetime,
    until: datetime | None = None,
    model: LoadedModel | None = None,
    limit: int = MAX_RECENT,
) -> DriftReport:
    """Read the training rows and the inputs received in ``[since, until)``, then compare.

    Works with the application role (SELECT on ``employee_features``, ``prediction_inputs``
    and ``predictions``). Without ``model`` the reference positive rate is left out.
    """
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_REFERENCE_SQL)
        reference = await cur.fetchall()
        await cur.execute(_RECENT_SQL, {"since": since, "until": until, "limit": limit})
        recent = await cur.fetchall()
    # Binning up to MAX_RECENT rows is CPU work: keep it off the event loop.
    return await asyncio.to_thread(_report, reference, recent, since, until, model)


def _report(
    reference: Sequence[Mapping[str, Any]],
    recent: Sequence[Mapping[str, Any]],
    since: datetime,
    until: datetime | None,
    model: LoadedModel | None,
) -> DriftReport:
    reference_rate = None
    if model is not None and reference:
        scores = model.predict_proba(columns_from_records(reference))
        reference_rate = float(np.mean(scores >= model.threshold))
    observed = sum(bool(r[voc.TARGET]) for r in reference) / len(reference) if reference else 0.0
    return compute_drift(
        reference,
        recent,
        reference_positive_rate=reference_rate,
        recent_labels=[str(r["label"]) for r in recent],
        observed_attrition_rate=observed,
        since=since,
        until=until,
        model_version=model.version if model else None,
        threshold=model.threshold if model else None,
    )
