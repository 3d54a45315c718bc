"""The read side of the audit trail: recorded predictions as the API, the web and the CLI show them.

One mapping from a joined audit row to its response shape (:func:`recorded`), and the GDPR
export of everything recorded about one employee.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from attrition.data.vocabulary import FEATURE_NAMES
from attrition.db import audit
from attrition.db.retention import MENTIONS
from attrition.errors import NotFoundError


def recorded(row: dict[str, Any]) -> dict[str, Any]:
    """A joined audit row as the API shows it."""
    return {
        "prediction_id": row["prediction_id"],
        "probabilite_depart": row["probability"],
        "prediction": str(row["label"]),
        "seuil": row["threshold"],
        "niveau_risque": str(row["risk_level"]),
        "explication": row["explanation"],
        "model_version": row["model_version"],
        "id_employee": row["id_employee"],
        "horodatage": row["created_at"],
        "source": str(row["source"]),
        "request_id": row["request_id"],
        "client_request_id": row.get("client_request_id"),
        "client": row["client"],
        "entree": {name: row[name] for name in FEATURE_NAMES},
    }


async def export_employee(conn: AsyncConnection[Any], id_employee: int) -> dict[str, Any]:
    """Everything recorded about one employee: the record, every prediction, every refusal."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM employee_features WHERE id_employee = %s", (id_employee,))
        record = await cur.fetchone()
        await cur.execute(
            "SELECT request_id, client_request_id, received_at AS recu_le, "  # noqa: S608
            "method AS methode, route, status AS statut, errors AS erreurs, "
            f"payload_excerpt AS extrait FROM rejected_requests WHERE {MENTIONS} ORDER BY id",
            {"id": id_employee},
        )
        refused = await cur.fetchall()
    predictions = await audit.list_predictions(
        conn, audit.PredictionFilter(id_employee=id_employee), after=None, limit=1_000_000
    )
    if record is None and not predictions and not refused:
        raise NotFoundError(f"Aucune donnée enregistrée pour l'employé {id_employee}.")
    return {
        "id_employee": id_employee,
        "dossier": record,
        "predictions": [recorded(r) for r in predictions],
        "requetes_refusees": refused,
        "note": (
            "Prédictions : aide à la décision RH revue par une personne, jamais une décision "
            "automatisée (RGPD, art. 22)."
        ),
    }
