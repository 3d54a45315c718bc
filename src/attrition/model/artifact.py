"""Safe persistence of fitted pipelines: skops format, checksum first, trusted types only.

A pickle runs arbitrary code when loaded, so a tampered model file would be a remote code
execution on the API server. Artifacts are therefore written with ``skops.io``, which
rebuilds only the types it is told to trust, and loading checks two things before building
anything: the SHA-256 recorded in the model registry, then that every type the file asks for
is on :data:`TRUSTED_TYPES` (types that ``skops`` already trusts, such as scikit-learn's
estimators and numpy arrays, are not listed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # skops and scikit-learn load only when an artifact is deserialised
    from sklearn.pipeline import Pipeline

from attrition.errors import ArtifactIntegrityError

#: Types beyond skops' defaults that our own pipelines contain, found at development time with
#: ``skops.io.get_untrusted_types`` on a dump of every candidate of
#: :data:`attrition.model.candidates.CANDIDATES`, bare and wrapped in a sigmoid calibration.
#: The logistic regression pipeline needs none of them. Rerun that check when adding a
#: candidate; never add a type found in a file you did not produce.
TRUSTED_TYPES: Final[tuple[str, ...]] = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.tree._tree.Tree",
)


def sha256_hex(data: bytes) -> str:
    """SHA-256 of the bytes, as 64 lowercase hexadecimal digits."""
    return hashlib.sha256(data).hexdigest()


def dump_pipeline(pipeline: Pipeline) -> bytes:
    """Serialise a fitted pipeline in the skops format.

    Parameters
    ----------
    pipeline:
        The fitted pipeline.

    Returns
    -------
    bytes
        The artifact; store :func:`sha256_hex` of it beside it, to give to
        :func:`load_pipeline`.
    """
    import skops.io as sio

    return sio.dumps(pipeline)


def verify_checksum(data: bytes, expected_sha256: str) -> None:
    """Refuse bytes whose SHA-256 differs from the recorded one (constant-time comparison)."""
    actual = sha256_hex(data)
    if not hmac.compare_digest(actual, expected_sha256.strip().lower()):
        raise ArtifactIntegrityError(
            "L'empreinte SHA-256 du fichier du modèle ne correspond pas à celle enregistrée : "
            "le fichier a été modifié ou corrompu, il n'est pas chargé."
        )


def serving_state_sha256(state: Mapping[str, object], artifact_sha256: str) -> str:
    """Checksum of a compiled serving state, bound to the artifact it was compiled from.

    Binding it to the artifact's checksum means neither can be swapped or rewritten alone.
    """
    canonical = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(artifact_sha256.encode() + b"\n" + canonical).hexdigest()


def load_pipeline(data: bytes, expected_sha256: str) -> Pipeline:
    """Verify an artifact, then rebuild the pipeline it holds.

    Parameters
    ----------
    data:
        Bytes written by :func:`dump_pipeline`.
    expected_sha256:
        The checksum recorded when the artifact was written.

    Returns
    -------
    sklearn.pipeline.Pipeline
        The fitted pipeline.

    Raises
    ------
    ArtifactIntegrityError
        If the checksum differs, the file is not a skops artifact, it asks for a type not on
        :data:`TRUSTED_TYPES`, or it does not hold a pipeline.
    """
    import skops.io as sio
    from sklearn.pipeline import Pipeline

    verify_checksum(data, expected_sha256)
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises several kinds on malformed archives
        raise ArtifactIntegrityError(
            f"Le fichier du modèle n'est pas une archive skops lisible ({type(exc).__name__})."
        ) from exc
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ArtifactIntegrityError(
            "Le fichier du modèle contient des types non autorisés, il n'est pas chargé : "
            + ", ".join(refused)
            + "."
        )
    pipeline = sio.loads(data, trusted=list(TRUSTED_TYPES))
    if not isinstance(pipeline, Pipeline):
        raise ArtifactIntegrityError(
            f"Le fichier du modèle ne contient pas un pipeline scikit-learn "
            f"mais un objet {type(pipeline).__name__}."
        )
    return pipeline
