"""Writing refused requests to ``rejected_requests``, within bounds.

Every refusal is counted in the metrics and has its access log line; only some reach the
database. An authenticated client's refusals are all written (its key is known: it answers
for them, and its quotas bound them). Without a valid key, writes are a budget: at most
``rejections_recorded_per_minute`` per address and ``rejections_recorded_per_minute_total``
for all addresses together, so that a client without a key cannot fill the table (300
requests without a key used to write 300 rows in 4 s). What is stored is bounded too: the
first ``max_errors_listed`` errors, the excerpt cut at :data:`PAYLOAD_EXCERPT_BYTES`, and
text PostgreSQL cannot store (NUL, lone surrogates) written in an escaped form.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg_pool import AsyncConnectionPool

from attrition.db import audit
from attrition.security.limits import bucket

log = logging.getLogger(__name__)


def storable(value: Any) -> Any:
    """``value`` with every string made storable by PostgreSQL (text and JSONB).

    NUL becomes the six characters ``\\u0000`` and a lone surrogate its ``\\udXXX`` escape:
    the record says what was sent, in a form the database accepts.
    """
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "\\u0000")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


class RejectionRecorder:
    """The ``app.state.rejections`` callable: best-effort, bounded writes of refusals."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        per_address_per_minute: int,
        total_per_minute: int,
        max_errors: int,
        metrics: Any = None,
    ) -> None:
        self.pool = pool
        self.max_errors = max_errors
        self.metrics = metrics
        self.per_address = bucket("journal-adresse", per_address_per_minute)
        self.total = bucket("journal-total", total_per_minute)
        self.limited = per_address_per_minute, total_per_minute

    def within_budget(self, client_ip: str | None) -> bool:
        per_address, total = self.limited
        if per_address <= 0 or total <= 0:
            return False
        if self.per_address.take(f"ip:{client_ip or '-'}") > 0:
            return False
        return self.total.take("tous") == 0.0

    async def __call__(self, *, client_ip: str | None = None, **fields: Any) -> None:
        if fields.get("api_key_id") is None and not self.within_budget(client_ip):
            if self.metrics is not None:
                self.metrics.observe_unrecorded_rejection(fields.get("status", 0))
            return
        errors = fields.get("errors") or []
        if len(errors) > self.max_errors:
            errors = [
                *errors[: self.max_errors],
                {"champ": "-", "message": f"{len(errors)} erreurs au total"},
            ]
        fields["errors"] = storable(errors)
        fields["payload_excerpt"] = storable(fields.get("payload_excerpt"))
        fields["route"] = storable(fields.get("route"))
        try:
            async with self.pool.connection(timeout=1.0) as conn:
                await audit.record_rejection(conn, **fields)
        except Exception as exc:
            log.warning("requête refusée non enregistrée : %s", type(exc).__name__)
