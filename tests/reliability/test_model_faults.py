"""A tampered or corrupted active model: refused with its reason, never served, and the
`attrition model activate` rollback restores the service without a restart."""

from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.cli import app as cli
from attrition.db.engine import Database
from attrition.model import registry
from attrition.model.final import TrainedModel, fit_final
from attrition.model.pipeline import frame_fingerprint, read_training_frame, register_trained
from tests.helpers import Keys, auth
from tests.reliability.figures import Figures

#: How the artifact of the active version is damaged: what it imitates, and the SQL (owner).
DAMAGES = {
    "altéré": (
        "un octet de l'artefact modifié, empreinte SHA-256 enregistrée inchangée (falsification)",
        "UPDATE model_versions SET artifact = overlay(artifact placing '\\x00'::bytea "
        "from 300 for 1) WHERE version = :v",
    ),
    "tronqué": (
        "artefact coupé de moitié avec une empreinte recalculée (écriture ou copie ratée)",
        "UPDATE model_versions SET artifact = substring(artifact from 1 for "
        "length(artifact) / 2), artifact_sha256 = encode(sha256(substring(artifact from 1 for "
        "length(artifact) / 2)), 'hex') WHERE version = :v",
    ),
}


@pytest.fixture(scope="module")
def spare_model(database: Database, model_version: str) -> TrainedModel:
    """A second fitted model, registered once per damage (fitting is the slow part)."""
    return fit_final(read_training_frame(database), "regression_logistique", 17)


def _wait_ready(client: TestClient, status: int, timeout: float = 15.0) -> dict[str, object]:
    """/ready until it answers ``status`` (the app follows activations every 2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get("/ready")
        if r.status_code == status or time.monotonic() > deadline:
            assert r.status_code == status, r.text
            return dict(r.json())
        time.sleep(0.2)


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_model_is_refused_then_rolled_back_with_the_cli(
    damage: str,
    spare_model: TrainedModel,
    client: TestClient,
    keys: Keys,
    database: Database,
    model_version: str,
    cli_env: CliRunner,
    figures: Figures,
) -> None:
    frame = read_training_frame(database)
    bad = register_trained(database, spare_model, frame_fingerprint(frame), activate=False)
    with figures.fault(
        f"Modèle actif {damage}",
        DAMAGES[damage][0],
        "/ready 503 avec la raison, aucune prédiction servie par ce modèle ; "
        "`attrition model activate <précédente>` rétablit le service sans redémarrage",
    ) as fault:
        with database.owner_engine().begin() as c:
            c.execute(text(DAMAGES[damage][1]), {"v": bad})
            bad_id = c.scalar(text("SELECT id FROM model_versions WHERE version = :v"), {"v": bad})
        try:
            with Session(database.owner_engine()) as s, s.begin():
                registry.activate_version(s, bad)
            ready = _wait_ready(client, 503)
            assert ready["statut"] == "indisponible" and ready["modele"] is None
            reason = str(ready["raison"])
            assert f"modèle {bad} refusé" in reason
            request_id = f"modele-{uuid.uuid4().hex}"
            r = client.post(
                "/v1/predictions",
                json=EXAMPLE_EMPLOYEE,
                headers={**auth(keys.predicteur), "X-Request-ID": request_id},
            )
            assert r.status_code == 503 and r.headers["retry-after"].isdigit()
            assert "Aucun modèle prêt" in r.json()["detail"]
        finally:
            result = cli_env.invoke(cli, ["model", "activate", model_version])
        assert result.exit_code == 0, result.output
        assert f"Version {model_version} active" in result.output
        ready = _wait_ready(client, 200)
        assert ready["modele"] == model_version
        r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
        assert r.status_code == 201 and r.json()["model_version"] == model_version
        with database.owner_engine().connect() as c:
            served = c.scalar(
                text("SELECT count(*) FROM predictions WHERE model_version_id = :m"), {"m": bad_id}
            )
            written = c.scalar(
                text("SELECT count(*) FROM prediction_inputs WHERE client_request_id = :r"),
                {"r": request_id},
            )
        assert served == 0 and written == 0
        fault["mesure"] = (
            f"/ready 503 « {reason} » ; 0 prédiction servie par ce modèle ; après "
            "`attrition model activate` : /ready 200 et 201"
        )
