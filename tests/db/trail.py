"""Records for filling the audit trail in the db tests, as the service writes them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from attrition.data.vocabulary import FEATURE_NAMES
from attrition.db.audit import PredictionRecord
from attrition.db.chain import AuditKey, record_mac
from attrition.db.engine import Database


def features(database: Database) -> list[dict[str, Any]]:
    """Every stored employee's id and features, as the API would receive them."""
    with database.owner_engine().connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT id_employee, {', '.join(FEATURE_NAMES)} FROM employee_features "
                "ORDER BY id_employee"
            )
        ).mappings()
        return [
            {k: (float(v) if k == "augmentation_salaire_precedente" else v) for k, v in r.items()}
            for r in rows
        ]


def record(
    n: int,
    row: dict[str, Any],
    id_employee: int | None,
    model_id: int,
    key: AuditKey,
    *,
    prefix: str = "plan",
) -> PredictionRecord:
    """The ``n``-th record of a fill, signed with ``key`` as the service signs what it answers."""
    values = {k: row[k] for k in FEATURE_NAMES}
    payload = {**values, **({"id_employee": id_employee} if id_employee else {})}
    out = PredictionRecord(
        request_id=f"{prefix}-{n}",
        api_key_id=None,
        source="api",
        id_employee=id_employee,
        features=values,
        payload=payload,
        model_version_id=model_id,
        probability=0.25,
        label="reste",
        threshold=0.4,
        risk_level="moyen",
        explanation={"facteurs_hausse": [], "facteurs_baisse": []},
        latency_ms=0.2,
    )
    out.record_mac = record_mac(key, out.mac_values())
    return out
