"""The read side, written once: what the API, the web pages and the CLI show of the records.

The owner rule (a ``predicteur`` sees only the predictions made with its own key) is
:func:`owner_of`; every read of the trail goes through :func:`read_prediction` or
:func:`list_predictions`, and every row becomes a response through :func:`recorded`. Stored
employees and the GDPR export are read here too. Callers pass a connection (the API's pool,
the CLI's owner connection); the SQL is in the repositories (``db/audit.py``,
``db/employees.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from attrition import wording
from attrition.data.vocabulary import FEATURE_NAMES, MODEL_INPUTS
from attrition.db import audit, employees, retention
from attrition.errors import FieldError, NotFoundError, ValidationError
from attrition.security.clients import Client

#: What the GDPR export says of the predictions it lists.
GDPR_NOTE = (
    "Prédictions : aide à la décision RH revue par une personne, jamais une décision "
    "automatisée (RGPD, art. 22)."
)


def owner_of(client: Client | None) -> int | None:
    """The owner rule: a ``predicteur`` sees only its own predictions (its key's id).

    Auditors, admins and the operator on the server (no client: the CLI) see them all (None).
    """
    return client.id if client is not None and client.role == "predicteur" else None


def recorded(row: dict[str, Any]) -> dict[str, Any]:
    """A joined audit row as the API shows it."""
    reading = wording.read_score(row["probability"], row["threshold"], row.get("risk_bands"))
    return {
        "prediction_id": row["prediction_id"],
        "probabilite_depart": row["probability"],
        "prediction": str(row["label"]),
        "seuil": row["threshold"],
        "niveau_risque": str(row["risk_level"]),
        "libelle_risque": reading.libelle,
        "lecture": reading.texte,
        "explication": row["explanation"],
        "model_version": row["model_version"],
        "id_employee": row["id_employee"],
        "horodatage": row["created_at"],
        "source": str(row["source"]),
        "request_id": row["request_id"],
        "client_request_id": row.get("client_request_id"),
        "client": row["client"],
        "entree": {
            name: row[name]
            for name in FEATURE_NAMES
            if row[name] is not None or name in MODEL_INPUTS
        },
    }


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """The filters of the history, whichever door they came through (all optional)."""

    id_employee: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    model_version: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class PredictionPage:
    predictions: list[dict[str, Any]]
    next_cursor: str | None

    def as_response(self) -> dict[str, Any]:
        return {"predictions": self.predictions, "curseur_suivant": self.next_cursor}


def decode_cursor(cursor: str | None) -> int | None:
    """The last id of the previous page; ValidationError if the cursor was not made by us."""
    if not cursor:
        return None
    try:
        return audit.decode_cursor(cursor)
    except (ValueError, KeyError, TypeError):
        raise ValidationError(
            "Curseur invalide.", errors=[FieldError("curseur", "curseur invalide ou altéré")]
        ) from None


async def read_prediction(
    conn: AsyncConnection[Any], prediction_id: int, client: Client | None
) -> dict[str, Any]:
    """One recorded prediction that ``client`` may see, or NotFoundError (never 403: no leak)."""
    row = await audit.get_prediction(conn, prediction_id, owner=owner_of(client))
    if row is None:
        raise NotFoundError(f"Prédiction {prediction_id} introuvable.")
    return recorded(row)


async def list_predictions(
    conn: AsyncConnection[Any],
    client: Client | None,
    query: HistoryQuery,
    *,
    after: int | None,
    limit: int,
) -> PredictionPage:
    """The predictions ``client`` may see, newest first, one page after the cursor ``after``."""
    flt = audit.PredictionFilter(owner=owner_of(client), **asdict(query))
    rows = await audit.list_predictions(conn, flt, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = audit.encode_cursor(rows[-1]["input_id"]) if more else None
    return PredictionPage([recorded(r) for r in rows], cursor)


async def read_employee(conn: AsyncConnection[Any], id_employee: int) -> dict[str, Any]:
    """The stored record of one employee (the three extracts joined), or NotFoundError."""
    row = await employees.get_employee(conn, id_employee)
    if row is None:
        raise NotFoundError(f"Employé {id_employee} inconnu : aucun dossier enregistré.")
    return row


async def list_employees(
    conn: AsyncConnection[Any], *, after: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Stored records by increasing id, and the cursor of the next page (None on the last)."""
    after = min(after or 0, 2_147_483_647)  # a cursor beyond any id: an empty page
    rows = await employees.list_employees(conn, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    # The same opaque cursor as the predictions' (one parameter name, `curseur`, everywhere).
    return rows, audit.encode_cursor(rows[-1]["id_employee"]) if more and rows else None


async def export_employee(conn: AsyncConnection[Any], id_employee: int) -> dict[str, Any]:
    """Everything recorded about one employee: the record, every prediction, every refusal."""
    record = await employees.get_employee(conn, id_employee)
    page = await list_predictions(
        conn, None, HistoryQuery(id_employee=id_employee), after=None, limit=1_000_000
    )
    refused = await retention.refusals_about(conn, id_employee)
    if record is None and not page.predictions and not refused:
        raise NotFoundError(f"Aucune donnée enregistrée pour l'employé {id_employee}.")
    return {
        "id_employee": id_employee,
        "dossier": record,
        "predictions": page.predictions,
        "requetes_refusees": refused,
        "note": GDPR_NOTE,
    }
