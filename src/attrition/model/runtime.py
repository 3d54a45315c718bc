"""The model runtime of an API process: load once, verify, compile, serve, follow activation.

Follows the small contract of model servers: ``load`` once (checksum verified before the
artifact is deserialised, types checked by skops), ``predict`` per request, a ``ready`` flag
with a reason when not ready, ``name`` and ``version``. A cheap version check against the
registry (one indexed row) lets an ``attrition model activate`` reach every running process
without a restart.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from attrition.errors import ArtifactIntegrityError, AttritionError, ModelNotReadyError
from attrition.model import features as feat
from attrition.model.compiled import (
    CompiledLinearModel,
    Explanation,
    FloatArray,
    NotCompilableError,
    Predictor,
)
from attrition.model.scalar import ScalarScorer

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

log = logging.getLogger(__name__)


def _predictor_from_row(row: Mapping[str, Any]) -> Predictor:
    """Verify the version's checksums and build its predictor.

    The artifact's SHA-256 is always checked. A linear model is then served from its stored
    compiled arrays (their own SHA-256 checked too), so API workers never import
    scikit-learn; any other model is deserialised with skops' trusted-type check.
    """
    from attrition.model.artifact import serving_state_sha256, verify_checksum

    artifact = bytes(row["artifact"])
    state = row.get("serving_state")
    if state is None:
        from attrition.model.artifact import load_pipeline

        return load_predictor(load_pipeline(artifact, row["artifact_sha256"]))
    verify_checksum(artifact, row["artifact_sha256"])
    digest = serving_state_sha256(state, row["artifact_sha256"])
    if not hmac.compare_digest(str(row.get("serving_sha256")), digest):
        raise ArtifactIntegrityError(
            "L'empreinte SHA-256 des poids compilés du modèle ne correspond pas à celle "
            "enregistrée : ils ont été modifiés, le modèle n'est pas chargé."
        )
    return CompiledLinearModel.from_state(state)


@dataclass(frozen=True)
class PipelinePredictor:
    """Fallback for a non-linear pipeline: scikit-learn on a one-off DataFrame, no explanations."""

    pipeline: Pipeline

    @property
    def explainable(self) -> bool:
        """Non-linear models have no exact explanation here."""
        return False

    def predict_proba(self, columns: Mapping[str, NDArray[np.generic]]) -> FloatArray:
        """Probability of leaving, one per employee."""
        frame = feat.to_model_frame(columns)
        return np.asarray(self.pipeline.predict_proba(frame)[:, 1], dtype=np.float64)

    def explain(
        self, columns: Mapping[str, NDArray[np.generic]], top_k: int = 5
    ) -> list[Explanation]:
        """Always refused: the active model is not linear.

        Raises
        ------
        AttritionError
            Always.
        """
        raise AttritionError(
            "Les explications détaillées ne sont disponibles que pour un modèle linéaire ; "
            "le modèle actif n'en est pas un."
        )


def load_predictor(pipeline: Pipeline) -> CompiledLinearModel | PipelinePredictor:
    """The fastest predictor for a fitted pipeline: compiled if linear, else the fallback."""
    try:
        return CompiledLinearModel.from_pipeline(pipeline)
    except NotCompilableError:
        return PipelinePredictor(pipeline)


@dataclass(slots=True)
class LoadedModel:
    """The active model version, compiled for serving."""

    id: int
    version: str
    algorithm: str
    threshold: float
    threshold_criterion: str
    metrics: dict[str, Any]
    sha256: str
    created_at: datetime
    compiled: Predictor
    scalar: ScalarScorer | None = field(init=False, default=None)
    """The one-row scorer of a compiled linear model (built once, with the model)."""

    def __post_init__(self) -> None:
        if isinstance(self.compiled, CompiledLinearModel):
            self.scalar = ScalarScorer(self.compiled)

    def predict_proba(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.compiled.predict_proba(columns)


@dataclass(slots=True)
class ModelRuntime:
    """Holds the active model of this process; ``ready`` is False with a ``reason`` otherwise."""

    name: str = "attrition"
    current: LoadedModel | None = None
    reason: str | None = "modèle non chargé"
    checked_at: float = 0.0
    check_interval_s: float = 2.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def ready(self) -> bool:
        return self.current is not None and self.reason is None

    @property
    def version(self) -> str | None:
        return self.current.version if self.current else None

    def require(self) -> LoadedModel:
        """The model to score with, or ModelNotReadyError (503) with the reason."""
        if self.current is None or self.reason is not None:
            raise ModelNotReadyError(f"Aucun modèle prêt : {self.reason or 'modèle non chargé'}.")
        return self.current

    async def refresh(self, conn: AsyncConnection[Any], *, force: bool = False) -> bool:
        """Load the active version if it changed since the last check; True if it changed."""
        now = time.monotonic()
        if not force and now - self.checked_at < self.check_interval_s:
            return False
        async with self._lock:
            self.checked_at = now
            cur = await conn.execute(
                "SELECT id, artifact_sha256 FROM model_versions WHERE is_active"
            )
            row = await cur.fetchone()
            if row is None:
                self.current, self.reason = None, "aucune version de modèle active"
                return True
            active_id, sha = row
            if self.current is not None and self.current.id == active_id and self.reason is None:
                return False
            if self.current is None or self.current.id != active_id or sha != self.current.sha256:
                await self._load(conn, active_id)
            return True

    async def _load(self, conn: AsyncConnection[Any], version_id: int) -> None:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT id, version, algorithm, threshold, threshold_criterion, metrics, "
                "artifact, artifact_sha256, serving_state, serving_sha256, created_at "
                "FROM model_versions WHERE id = %s",
                (version_id,),
            )
            row = await cur.fetchone()
        if row is None:  # pragma: no cover - deleted between two statements
            self.current, self.reason = None, "version active introuvable"
            return
        try:
            compiled = await asyncio.to_thread(_predictor_from_row, row)
        except ArtifactIntegrityError as exc:
            log.error("modèle %s refusé : %s", row["version"], exc.message)
            self.current = None
            self.reason = f"modèle {row['version']} refusé : {exc.message}"
            return
        except AttritionError as exc:  # pragma: no cover - defensive
            self.current, self.reason = None, exc.message
            return
        if not compiled.explainable:
            # Registered before the registry refused such models: serving it would fail on
            # every explanation, so the process says why it is not ready instead.
            self.current = None
            self.reason = (
                f"modèle {row['version']} refusé : non linéaire, ses prédictions ne peuvent "
                "pas être expliquées"
            )
            return
        self.current = LoadedModel(
            id=row["id"],
            version=row["version"],
            algorithm=row["algorithm"],
            threshold=float(row["threshold"]),
            threshold_criterion=row["threshold_criterion"],
            metrics=row["metrics"],
            sha256=row["artifact_sha256"],
            created_at=row["created_at"],
            compiled=compiled,
        )
        self.reason = None
        log.info("modèle %s chargé (sha256 %s…)", row["version"], row["artifact_sha256"][:12])
