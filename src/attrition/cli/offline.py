"""The prediction path for the command line: same service, same recording, no HTTP.

``attrition predict`` opens a small psycopg pool as the application role, loads the active
model through the same runtime as the API (checksum verified), and calls
:class:`PredictionService`. The inputs and outputs land in the same audit tables, with
``api_key_id`` empty (an operator on the server) and a ``cli-`` request id.
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from attrition.api.schemas import PredictionRequest
from attrition.config import Settings
from attrition.data.vocabulary import FEATURE_NAMES
from attrition.db.engine import Database, libpq_conninfo
from attrition.errors import FieldError, ValidationError
from attrition.model.runtime import ModelRuntime
from attrition.services.predictions import Outcome, PredictionService, RequestContext, ScoreItem


def read_employee_file(path: Path) -> list[PredictionRequest]:
    """Rows of a CSV file with the API's field names, validated like API requests."""
    from pydantic import ValidationError as PydanticError

    from attrition.api.translations import translate

    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    out, errors = [], []
    for index, row in enumerate(rows):
        values: dict[str, Any] = {}
        for name, raw in row.items():
            if name is None or raw is None or raw == "":
                continue
            values[name] = _parse(raw)
        try:
            out.append(PredictionRequest(**values))
        except PydanticError as exc:
            for item in translate([dict(e) for e in exc.errors()]):
                errors.append(FieldError(item["champ"], item["message"], row=index + 2))
    if errors:
        first = errors[0]
        raise ValidationError(
            f"{path.name}, ligne {first.row} : {first.field} : {first.message}", errors=errors
        )
    if not out:
        raise ValidationError(f"{path.name} : aucun employé à évaluer.")
    return out


def _parse(raw: str) -> Any:
    text = raw.strip()
    if text.lower() in {"true", "oui"}:
        return True
    if text.lower() in {"false", "non"}:
        return False
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


async def predict_offline(
    db: Database,
    settings: Settings,
    *,
    employee_id: int | None = None,
    requests: list[PredictionRequest] | None = None,
) -> list[Outcome]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        libpq_conninfo(db.app_url), min_size=1, max_size=2, open=False
    )
    await pool.open()
    try:
        runtime = ModelRuntime()
        async with pool.connection() as conn:
            await runtime.refresh(conn, force=True)
        from attrition.security.secrets import audit_key

        service = PredictionService(pool, runtime, audit_key=audit_key(settings))
        request_id = f"cli-{uuid.uuid4().hex[:16]}"
        if employee_id is not None:
            features = await service.employee_features(employee_id)
            payload = {"id_employee": employee_id, **features}
            ctx = RequestContext(request_id=request_id, api_key_id=None, source="employee")
            result = await service.predict([ScoreItem(features, employee_id, payload)], ctx)
            return result.outcomes
        assert requests
        items = [
            ScoreItem(r.features(), r.id_employee, r.model_dump(mode="json", exclude_none=True))
            for r in requests
        ]
        ctx = RequestContext(request_id=request_id, api_key_id=None, source="batch")
        return (await service.predict(items, ctx)).outcomes
    finally:
        await pool.close()


EXPORT_COLUMNS = (
    "prediction_id",
    "horodatage",
    "source",
    "client",
    "request_id",
    "id_employee",
    *FEATURE_NAMES,
    "model_version",
    "probabilite_depart",
    "prediction",
    "seuil",
    "niveau_risque",
)
