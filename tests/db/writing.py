"""Writing records through the group-commit writer, as the service does, in the db tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg_pool import AsyncConnectionPool

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.db import chain
from attrition.db.audit import PredictionRecord
from attrition.db.engine import Database, libpq_conninfo
from attrition.db.pool import check_connection
from attrition.db.writer import GroupCommitWriter
from tests.helpers import TEST_AUDIT_KEY


def record(request_id: str, model_id: int, **changes: Any) -> PredictionRecord:
    fields: dict[str, Any] = {
        "request_id": request_id,
        "api_key_id": None,
        "source": "api",
        "id_employee": None,
        "features": dict(EXAMPLE_EMPLOYEE),
        "payload": dict(EXAMPLE_EMPLOYEE),
        "model_version_id": model_id,
        "probability": 0.3125,
        "label": "reste",
        "threshold": 0.4,
        "risk_level": "moyen",
        # A complete explanation: these rows are also read back through the API (its schema).
        "explanation": {
            "valeur_de_base": -1.5,
            "logit": -1.0,
            "facteurs_hausse": [
                {"variable": "age", "libelle": "Âge", "valeur": 41, "contribution": 0.5}
            ],
            "facteurs_baisse": [],
        },
        "latency_ms": 0.25,
    }
    fields.update(changes)
    made = PredictionRecord(**fields)
    # As the service does: the MAC of what is recorded (so that the trail still verifies).
    made.record_mac = chain.record_mac(chain.AuditKey.derive(TEST_AUDIT_KEY), made.mac_values())
    return made


def with_writer(
    database: Database,
    work: Callable[[GroupCommitWriter, AsyncConnectionPool[Any]], Awaitable[Any]],
) -> Any:
    async def main() -> Any:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            libpq_conninfo(database.app_url),
            min_size=1,
            max_size=4,
            open=False,
            check=check_connection,  # as the service's pool
        )
        await pool.open()
        writer = GroupCommitWriter(pool)
        await writer.start()
        try:
            return await work(writer, pool)
        finally:
            await writer.close()
            await pool.close()

    return asyncio.run(main())
