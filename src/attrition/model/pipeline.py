"""The training pipeline end to end: read from PostgreSQL, evaluate, fit, register.

Every interaction with the model goes through the database: the rows come from the
``employee_features`` view (never from the CSV files), and the fitted pipeline goes back as a
skops artifact with its checksum, metrics and provenance in ``model_versions``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from attrition.config import Settings
from attrition.db.engine import Database
from attrition.model import registry
from attrition.model.artifact import dump_pipeline
from attrition.model.calibration import NONE
from attrition.model.final import TrainedModel, fit_final
from attrition.model.training import evaluate, select_best

Say = Callable[[str], None]


def read_training_frame(db: Database) -> pd.DataFrame:
    """All ``employee_features`` rows, in id order (the order matters for the fingerprint)."""
    with db.owner_engine().connect() as conn:
        frame = pd.read_sql(text("SELECT * FROM employee_features ORDER BY id_employee"), conn)
    return frame


def frame_fingerprint(frame: pd.DataFrame) -> str:
    return registry.fingerprint_rows(list(frame.itertuples(index=False, name=None)))


#: The recipe the last full comparison retained (``attrition train --compare``, model card):
#: what a first start and a plain ``attrition train`` fit, in seconds instead of minutes.
RETAINED_RECIPE: Final = "regression_logistique"


def train(
    db: Database,
    settings: Settings,
    *,
    repeats: int = 5,
    candidates: tuple[str, ...] | None = None,
    say: Say = lambda _m: None,
) -> tuple[TrainedModel, str]:
    frame = read_training_frame(db)
    say(f"{len(frame)} employés lus dans la vue employee_features.")
    report = evaluate(
        frame, seed=settings.seed, repeats=repeats, candidates=candidates, progress=say
    )
    name = select_best(report)
    say(f"Modèle retenu : {name}. Ajustement final et choix du seuil…")
    trained = fit_final(frame, name, settings.seed, report=report)
    return trained, frame_fingerprint(frame)


def register_trained(
    db: Database, trained: TrainedModel, fingerprint: str, *, activate: bool
) -> str:
    artifact = dump_pipeline(trained.pipeline)
    with Session(db.owner_engine()) as session, session.begin():
        row = registry.register(
            session,
            registry.NewVersion(
                algorithm=trained.algorithm,
                hyper_parameters=trained.hyper_parameters,
                features=trained.features,
                metrics={**trained.metrics, "seed": trained.seed, "calibrated": trained.calibrated},
                threshold=trained.threshold,
                threshold_criterion=trained.threshold_criterion,
                data_fingerprint=fingerprint,
                artifact=artifact,
                calibration=None if trained.calibration is None else trained.calibration.to_state(),
            ),
            activate=activate,
        )
        return row.version


def train_and_register(
    db: Database,
    settings: Settings,
    *,
    activate: bool,
    repeats: int = 5,
    candidates: tuple[str, ...] | None = None,
    say: Say = lambda _m: None,
) -> str:
    """Train from the database and register the result; return the new version."""
    trained, fingerprint = train(db, settings, repeats=repeats, candidates=candidates, say=say)
    return register_trained(db, trained, fingerprint, activate=activate)


def rebuild_for_report(
    db: Database, version: str | None = None
) -> tuple[TrainedModel, pd.DataFrame, dict[str, Any]]:
    """Rebuild what the model card needs from a registered version.

    The pipeline and the metrics are the registry's; the out-of-fold probabilities behind the
    figures are recomputed with the version's recipe and seed on the same rows (checked by
    the data fingerprint), and must give the registered threshold again.
    """
    from attrition.errors import ModelNotReadyError
    from attrition.model.artifact import load_pipeline

    with Session(db.owner_engine()) as session:
        row = (
            registry.get_version(session, version) if version else registry.active_version(session)
        )
        if row is None:
            raise ModelNotReadyError("Aucune version active : entraînez un modèle d'abord.")
        pipeline = load_pipeline(row.artifact, row.artifact_sha256)
        info: dict[str, Any] = {
            "version": row.version,
            "trained_at": row.created_at.isoformat(timespec="seconds"),
            "threshold": row.threshold,
            "metrics": row.metrics,
            "algorithm": row.algorithm,
            "fingerprint": row.data_fingerprint,
            "code_version": row.code_version,
            "sha256": row.artifact_sha256,
        }
    frame = read_training_frame(db)
    if frame_fingerprint(frame) != info["fingerprint"]:
        raise ModelNotReadyError(
            f"Les données ont changé depuis l'entraînement de {info['version']} : "
            "réentraînez avant de générer la fiche."
        )
    seed = int(info["metrics"].get("seed", 7))
    # Versions registered before recalibration was part of the recipe have no method: raw.
    method = (info["metrics"].get("calibration") or {}).get("method", NONE)
    trained = fit_final(frame, info["algorithm"], seed, calibration=method)
    if abs(trained.threshold - float(info["threshold"])) > 1e-9:
        raise ModelNotReadyError("Le seuil recalculé ne correspond pas au registre.")
    trained.pipeline = pipeline
    trained.metrics = {k: v for k, v in info["metrics"].items() if k not in {"seed", "calibrated"}}
    return trained, frame, info
