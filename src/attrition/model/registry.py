"""The model registry: every trained version, its artifact and provenance, in PostgreSQL.

Artifacts live in the database (bytea) so that every API replica loads the active model with
no shared disk; each is stored with its SHA-256, checked again before any load. Exactly one
version is active at a time (a partial unique index enforces "at most one"; activation swaps
in one transaction). Repositories here never commit: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from attrition import __version__
from attrition.config import PROJECT_ROOT
from attrition.db.models import ModelActivation, ModelVersion
from attrition.errors import NotFoundError, ValidationError

LIBRARIES = ("scikit-learn", "numpy", "pandas", "skops", "scipy")


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            out[name] = "absent"
    return out


def code_version() -> str:
    """The git commit when running from a checkout, else the package version."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],  # noqa: S607
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        return f"{sha}{'-dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"package-{__version__}"


def fingerprint_rows(rows: list[tuple[Any, ...]]) -> str:
    """SHA-256 of the training rows in a canonical text form (order-sensitive)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(repr(tuple(row)).encode())
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class NewVersion:
    """Everything the registry stores about a trained model, before it has a version."""

    algorithm: str
    hyper_parameters: dict[str, Any]
    features: list[str]
    metrics: dict[str, Any]
    threshold: float
    threshold_criterion: str
    data_fingerprint: str
    artifact: bytes
    calibration: dict[str, Any] | None = None


def serving_state(
    artifact: bytes, calibration: dict[str, Any] | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """The compiled scoring arrays of an artifact and their checksum (None if not linear).

    The recalibration map, when the recipe kept one, is part of the compiled state, so the
    checksum that binds the state to the artifact covers it too.
    """
    from attrition.model.artifact import load_pipeline, serving_state_sha256
    from attrition.model.calibration import Calibration
    from attrition.model.compiled import CompiledLinearModel, NotCompilableError

    digest = hashlib.sha256(artifact).hexdigest()
    pipeline = load_pipeline(artifact, digest)
    mapping = None if calibration is None else Calibration.from_state(calibration)
    try:
        state = CompiledLinearModel.from_pipeline(pipeline, mapping).to_state()
    except NotCompilableError:
        return None, None
    return state, serving_state_sha256(state, digest)


def next_version(session: Session) -> str:
    count = session.scalar(select(func.count()).select_from(ModelVersion)) or 0
    return f"v{count + 1}"


def register(session: Session, new: NewVersion, *, activate: bool = False) -> ModelVersion:
    """Insert a version (and activate it if asked) in the caller's transaction.

    Raises
    ------
    ValidationError
        If the service could not explain the model's predictions: every prediction is
        served with the exact contribution of each factor, which only the compiled linear
        model gives (see :mod:`attrition.model.compiled`). Refusing here, before anything is
        written, is what keeps a registered version servable.
    """
    state, state_sha256 = serving_state(new.artifact, new.calibration)
    if state is None:
        raise ValidationError(
            f"Version refusée : le modèle « {new.algorithm} » n'est pas linéaire, et le "
            "service ne sait expliquer exactement (contribution de chaque facteur) que les "
            "prédictions d'une régression logistique. Chaque prédiction servie doit porter "
            "son explication : entraînez le candidat « regression_logistique »."
        )
    row = ModelVersion(
        version=next_version(session),
        algorithm=new.algorithm,
        hyper_parameters=new.hyper_parameters,
        features=new.features,
        metrics=new.metrics,
        threshold=new.threshold,
        threshold_criterion=new.threshold_criterion,
        data_fingerprint=new.data_fingerprint,
        code_version=code_version(),
        library_versions=library_versions(),
        artifact=new.artifact,
        artifact_sha256=hashlib.sha256(new.artifact).hexdigest(),
        is_active=False,
    )
    row.serving_state, row.serving_sha256 = state, state_sha256
    session.add(row)
    session.flush()
    if activate:
        activate_version(session, row.version)
    return row


def list_versions(session: Session) -> list[ModelVersion]:
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.id)))


def get_version(session: Session, version: str) -> ModelVersion:
    row = session.scalar(select(ModelVersion).where(ModelVersion.version == version))
    if row is None:
        raise NotFoundError(f"Version de modèle « {version} » inconnue.")
    return row


def active_version(session: Session) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.is_active))


def activate_version(session: Session, version: str) -> ModelVersion:
    """Make ``version`` the only active one; running APIs pick it up without a restart."""
    row = get_version(session, version)
    session.execute(update(ModelVersion).where(ModelVersion.is_active).values(is_active=False))
    session.flush()
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.id == row.id)
        .values(is_active=True, activated_at=func.now())
    )
    session.flush()
    session.refresh(row)
    return row


@dataclass(frozen=True, slots=True)
class Activation:
    """What :func:`activate_checked` did: the version, the rule's verdict, whether forced."""

    version: str
    previous: str | None
    refusals: list[str]
    forced: bool
    already_active: bool = False
    rollback: bool = False


def activate_checked(
    session: Session, version: str, *, force: bool = False, reason: str | None = None
) -> Activation:
    """Activate ``version`` if the acceptance rule accepts it, and record the activation.

    The rule (:mod:`attrition.model.acceptance`) compares the version's nested figures with
    the active version's; a version that was already active once (a rollback) is not judged
    again. A refused version is activated only with ``force`` and a reason;
    either way the activation, the broken rules and the reason go to ``model_activations``
    in the caller's transaction.

    Raises
    ------
    NotFoundError
        If the version does not exist.
    ValidationError
        If the rule refuses the version and ``force`` is not set, or ``force`` comes
        without a reason.
    """
    from attrition.model import acceptance

    row = get_version(session, version)
    current = active_version(session)
    if current is not None and current.id == row.id:
        return Activation(row.version, row.version, [], False, already_active=True)
    if row.activated_at is not None:
        # A rollback to a version already served: the rule gates new versions, and must not
        # stand in the way of restoring a known state during an incident.
        verdict = acceptance.Verdict([], {"retour_arriere": True})
    else:
        verdict = acceptance.check(row.metrics, None if current is None else current.metrics)
    if not verdict.accepted and not force:
        raise ValidationError(
            f"Activation de {row.version} refusée par la règle d'acceptation : "
            + " ; ".join(verdict.refusals)
            + '. Pour passer outre : --force --raison "…" (enregistré dans le registre).'
        )
    if force and not (reason and reason.strip()):
        raise ValidationError(
            '--force exige une raison : --raison "…" (elle est enregistrée dans le registre).'
        )
    activate_version(session, row.version)
    session.add(
        ModelActivation(
            model_version_id=row.id,
            previous_version_id=None if current is None else current.id,
            forced=bool(verdict.refusals),
            reason=reason.strip() if reason else None,
            refusals=list(verdict.refusals),
            checks=verdict.checks,
        )
    )
    session.flush()
    return Activation(
        row.version,
        None if current is None else current.version,
        list(verdict.refusals),
        bool(verdict.refusals),
        rollback=bool(verdict.checks.get("retour_arriere")),
    )
