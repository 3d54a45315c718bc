"""Scoring employees and recording every input and output: the one prediction path.

The API, the batch endpoint, the stored-employee endpoint, the web interface and the CLI all
come here, so validation, scoring, explanation and recording cannot diverge. The model is
called, and the input and output are written in one transaction, before anything is
returned: if the database cannot record it, the caller gets DatabaseUnavailableError (503)
and no prediction.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from attrition import wording
from attrition.db import chain, employees, idempotency, usage
from attrition.db.audit import PredictionRecord, Written, insert_predictions
from attrition.db.writer import LARGE_GROUP, GroupCommitWriter
from attrition.errors import (
    ConflictError,
    DatabaseUnavailableError,
    FieldError,
    NotFoundError,
    ValidationError,
)
from attrition.model.explanations import score_records, scores
from attrition.model.features import EXCLUDED_FROM_MODEL, columns_from_records
from attrition.model.runtime import LoadedModel, ModelRuntime
from attrition.security.clients import Charge
from attrition.services import batches
from attrition.services.answers import NOT_YET, SingleBody, Template

log = logging.getLogger(__name__)


risk_level = wording.risk_level


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asks, through which door, under which request id."""

    request_id: str
    api_key_id: int | None
    source: str = "api"
    idempotency_key: str | None = None
    request_hash: str | None = None
    client_request_id: str | None = None
    """The client's own ``X-Request-ID``, kept beside the server's id."""
    first_row: int = 0
    """Number of the request's first row (``batch_row``): a file streamed in chunks under one
    request id numbers its rows across the chunks, so (request id, row) stays unique."""


@dataclass(frozen=True, slots=True)
class ScoreItem:
    features: dict[str, Any]
    id_employee: int | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A recorded prediction, as returned to the caller."""

    prediction_id: int
    probability: float
    label: str
    threshold: float
    risk_level: str
    explanation: dict[str, Any]
    model_version: str
    id_employee: int | None
    created_at: datetime
    batch_id: str | None = None
    bands: Any = None  # the version's out-of-fold risk bands, for the reading

    def reading(self) -> wording.Reading:
        return wording.read_score(self.probability, self.threshold, self.bands)

    def as_response(self) -> dict[str, Any]:
        reading = self.reading()
        return {
            "prediction_id": self.prediction_id,
            "probabilite_depart": self.probability,
            "prediction": self.label,
            "seuil": self.threshold,
            "niveau_risque": self.risk_level,
            "libelle_risque": reading.libelle,
            "lecture": reading.texte,
            "explication": self.explanation,
            "model_version": self.model_version,
            "id_employee": self.id_employee,
            "horodatage": self.created_at,
        }


Render = Callable[[list["Outcome"]], dict[str, Any]]

#: How long an Idempotency-Key is remembered (documented in the API description).
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Result:
    """What a prediction request produced: the outcomes, and the response body if rendered.

    A replayed idempotent request has no new outcomes, only the stored ``body``.
    """

    outcomes: list[Outcome]
    body: dict[str, Any] | bytes | None
    """A dict, or the JSON bytes of a body rendered early (:class:`SingleBody`)."""
    replayed: bool
    used: int | None = None
    """The key's count of the day after this request (None: nothing was taken)."""


class PredictionService:
    """Scores and records; built once per process with the pool and the model runtime."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        runtime: ModelRuntime,
        *,
        audit_key: chain.AuditKey,
        observer: Callable[[Sequence[Outcome], str], None] | None = None,
        writer: GroupCommitWriter | None = None,
    ) -> None:
        self.pool = pool
        self.runtime = runtime
        # Every record carries the MAC of what was answered, computed here, before writing.
        self.audit_key = audit_key
        # Large requests one at a time, on a connection of their own (services.batches).
        self._large = asyncio.Semaphore(1)
        # Group commit (ATTRITION_DB__GROUP_COMMIT): records written with other requests'.
        self.writer = writer
        # Told what was recorded (e.g. the metrics); knows nothing of HTTP and never raises.
        self.observer = observer

    async def predict(
        self,
        items: Sequence[ScoreItem],
        ctx: RequestContext,
        *,
        render: Render | None = None,
        take: usage.Take | None = None,
    ) -> Result:
        """Score ``items`` in one vectorised call and record them in one transaction.

        ``take`` (the key's daily quota) is taken in that same transaction: refused, it raises
        :class:`usage.QuotaExceeded` and nothing is recorded; a replay takes nothing.

        With ``ctx.idempotency_key`` (and ``render``, which turns outcomes into the response
        body), a retry with the same key and body returns the first response and writes
        nothing; the same key with another body is refused; two concurrent requests with one
        key give one prediction (the second waits for the first's commit, then replays it).
        """
        if ctx.idempotency_key is not None and render is not None:
            replay = await self._replay(ctx)
            if replay is not None:
                return replay
        model = self.runtime.require()
        if len(items) >= LARGE_GROUP:  # scored while its inputs are written (services.batches)
            async with self._large:
                return await self._record(model, items, ctx, None, render, take)
        records = self._score(model, items, ctx)
        if self.writer is not None and ctx.idempotency_key is None:
            return await self._record_grouped(model, items, ctx, records, render, take)
        return await self._record(model, items, ctx, records, render, take)

    async def _record(
        self,
        model: LoadedModel,
        items: Sequence[ScoreItem],
        ctx: RequestContext,
        records: list[PredictionRecord] | None,
        render: Render | None,
        take: usage.Take | None,
    ) -> Result:
        """Record in one transaction of a pooled connection (``records`` None: score too)."""
        used = None
        try:
            async with self.pool.connection() as conn:
                try:
                    async with conn.transaction():
                        await self._check_employees(conn, items)
                        if take is not None:
                            used = await usage.take(conn, take)
                        if records is None:
                            async with batches.score_and_copy(
                                conn, items, ctx, self._preparer(model, ctx)
                            ) as scored:
                                # Rendered while PostgreSQL checks the outputs.
                                outcomes = self._outcomes(model, scored.records, scored.written)
                                body = render(outcomes) if render is not None else None
                        else:
                            written = await insert_predictions(conn, records)
                            outcomes = self._outcomes(model, records, written)
                            body = render(outcomes) if render is not None else None
                        if ctx.idempotency_key is not None and body is not None:
                            await idempotency.remember(conn, ctx, body, IDEMPOTENCY_TTL)
                except psycopg.errors.UniqueViolation:
                    # A concurrent request with the same key committed first: replay it.
                    replay = await self._replay(ctx)
                    if replay is None:  # pragma: no cover - the winner expired in between
                        raise ConflictError(
                            "Une requête avec la même clé d'idempotence est en cours."
                        ) from None
                    return replay
        except (psycopg.OperationalError, PoolTimeout) as exc:
            log.warning("prédiction non enregistrée : %s", type(exc).__name__)
            raise DatabaseUnavailableError(
                "La base de données est indisponible : la prédiction n'a pas été enregistrée, "
                "réessayez dans quelques secondes."
            ) from exc
        if self.observer is not None:
            self.observer(outcomes, ctx.source)
        return Result(outcomes=outcomes, body=body, replayed=False, used=used)

    async def predict_charged(
        self, items: Sequence[ScoreItem], ctx: RequestContext, charge: Charge, *, render: Render
    ) -> Result:
        """:meth:`predict`, its write paying the key's day quota; 429 if that is spent.

        A replay makes no prediction: the minute's tokens are given back and nothing counts.
        """
        try:
            result = await self.predict(items, ctx, render=render, take=charge.take)
        except usage.QuotaExceeded as exc:
            raise charge.refused(exc.used) from None
        if result.replayed:
            charge.give_back()
        return result

    async def _record_grouped(
        self,
        model: LoadedModel,
        items: Sequence[ScoreItem],
        ctx: RequestContext,
        records: list[PredictionRecord],
        render: Render | None,
        take: usage.Take | None,
    ) -> Result:
        """Record through the group-commit writer; returns after the group's COMMIT."""
        assert self.writer is not None
        early: list[Template] = []
        if isinstance(render, SingleBody) and len(records) == 1:
            # Runs once this task waits for PostgreSQL, in the window before the COMMIT.
            asyncio.get_running_loop().call_soon(self._template, early, model, records, render)
        try:
            if any(item.id_employee is not None for item in items):
                async with self.pool.connection() as conn:
                    await self._check_employees(conn, items)
            committed = await self.writer.write(records, take)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            log.warning("prédiction non enregistrée : %s", type(exc).__name__)
            raise DatabaseUnavailableError(
                "La base de données est indisponible : la prédiction n'a pas été enregistrée, "
                "réessayez dans quelques secondes."
            ) from exc
        outcomes = self._outcomes(model, records, committed.written)
        body: dict[str, Any] | bytes | None
        if early:
            body = early[0].body(outcomes[0].prediction_id, outcomes[0].created_at)
        else:
            body = render(outcomes) if render is not None else None
        if self.observer is not None:
            self.observer(outcomes, ctx.source)
        return Result(outcomes=outcomes, body=body, replayed=False, used=committed.used)

    def _template(
        self,
        into: list[Template],
        model: LoadedModel,
        records: list[PredictionRecord],
        render: SingleBody,
    ) -> None:
        """Render the body of ``records`` (one) but its id and time; on failure, nothing
        (the body is then rendered after the COMMIT, as for any other answer)."""
        try:
            outcome = self._outcomes(model, records, [NOT_YET])
            into.append(render.template(outcome[0]))
        except Exception:  # pragma: no cover - a bug here must not cost the prediction
            log.exception("réponse non préparée pendant l'écriture")

    async def _replay(self, ctx: RequestContext) -> Result | None:
        assert ctx.idempotency_key is not None and ctx.api_key_id is not None
        try:
            async with self.pool.connection() as conn:
                stored = await idempotency.lookup(conn, ctx.api_key_id, ctx.idempotency_key)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailableError("La base de données est indisponible.") from exc
        if stored is None:
            return None
        if stored.request_hash != ctx.request_hash:
            raise ValidationError(
                "Clé d'idempotence déjà utilisée avec un autre corps de requête.",
                errors=[
                    FieldError(
                        "Idempotency-Key",
                        "déjà utilisée avec une requête différente : choisissez une nouvelle clé",
                    )
                ],
            )
        return Result(outcomes=[], body=stored.response, replayed=True)

    def _preparer(self, model: LoadedModel, ctx: RequestContext) -> batches.Prepare:
        """A large request's scoring in two steps: the model for every row, then per chunk
        the explanations and the signed records (:mod:`attrition.services.batches`)."""

        def prepare(items: Sequence[batches.PendingInput]) -> batches.Sign:
            started = time.perf_counter()
            scored = scores(model, columns_from_records([item.features for item in items]))
            latency_ms = (time.perf_counter() - started) * 1000 / len(items)

            def sign(first: int, end: int, batch_id: str) -> list[PredictionRecord]:
                return self._sign(
                    model,
                    items[first:end],
                    scored.probabilities[first:end],
                    [scored.explain(i) for i in range(first, end)],
                    ctx,
                    batch_id,
                    first,
                    latency_ms,
                    for_copy=True,
                )

            return sign

        return prepare

    def _score(
        self, model: LoadedModel, items: Sequence[ScoreItem], ctx: RequestContext
    ) -> list[PredictionRecord]:
        started = time.perf_counter()
        probabilities, explanations = score_records(model, [item.features for item in items])
        latency_ms = (time.perf_counter() - started) * 1000 / len(items)
        batch_id = str(uuid.uuid4()) if len(items) > 1 or ctx.source == "batch" else None
        return self._sign(model, items, probabilities, explanations, ctx, batch_id, 0, latency_ms)

    def _sign(
        self,
        model: LoadedModel,
        items: Sequence[ScoreItem | batches.PendingInput],
        probabilities: Sequence[float],
        explanations: Sequence[dict[str, Any]],
        ctx: RequestContext,
        batch_id: str | None,
        first: int,
        latency_ms: float,
        *,
        for_copy: bool = False,
    ) -> list[PredictionRecord]:
        """The signed records of scored ``items``, numbered from ``ctx.first_row + first``.

        ``for_copy``: the records go to a COPY (:mod:`attrition.db.bulk`), which sends the
        payload and the explanation as JSON text: the JSON their MAC covers is made once and
        kept on the record (``items`` are then :class:`batches.PendingInput`, whose payload's
        JSON is already made), instead of once for the MAC and once for the COPY.
        """
        records = []
        key = self.audit_key
        for index, (item, probability, explanation) in enumerate(
            zip(items, probabilities, explanations, strict=True)
        ):
            p = float(probability)
            record = PredictionRecord(
                request_id=ctx.request_id,
                api_key_id=ctx.api_key_id,
                source=ctx.source,
                id_employee=item.id_employee,
                features=item.features,
                payload=item.payload,
                model_version_id=model.id,
                probability=p,
                label=wording.decision(p, model.threshold),
                threshold=model.threshold,
                risk_level=risk_level(p, model.threshold),
                explanation=explanation,
                latency_ms=latency_ms,
                batch_id=batch_id,
                batch_row=ctx.first_row + first + index,
                idempotency_key=ctx.idempotency_key,
                request_hash=ctx.request_hash,
                client_request_id=ctx.client_request_id,
            )
            if for_copy:
                assert isinstance(item, batches.PendingInput)
                record.payload_json = item.payload_json
                record.explanation_json = chain.json_of(explanation)
            # The bytes the MAC covers are also what the writer sends (db.writer.records_json).
            record.canonical = chain.canonical(record.mac_values())
            record.record_mac = chain.mac_of_canonical(key, record.canonical)
            records.append(record)
        return records

    @staticmethod
    def _outcomes(
        model: LoadedModel, records: list[PredictionRecord], written: list[Written]
    ) -> list[Outcome]:
        bands = wording.bands_of(model.metrics)
        return [
            Outcome(
                prediction_id=w.prediction_id,
                probability=r.probability,
                label=r.label,
                threshold=r.threshold,
                risk_level=r.risk_level,
                explanation=r.explanation,
                model_version=model.version,
                id_employee=r.id_employee,
                created_at=w.created_at,
                batch_id=r.batch_id,
                bands=bands,
            )
            for w, r in zip(written, records, strict=True)
        ]

    async def _check_employees(self, conn: Any, items: Sequence[ScoreItem]) -> None:
        wanted = sorted({i.id_employee for i in items if i.id_employee is not None})
        if not wanted:
            return
        found = await employees.existing_ids(conn, wanted)
        missing = [i for i in wanted if i not in found]
        if missing:
            raise NotFoundError(f"Employé {missing[0]} inconnu : aucun dossier enregistré.")

    async def employee_features(self, id_employee: int) -> dict[str, Any]:
        """The stored features of one employee the model uses, or NotFoundError.

        The fields the model leaves out (:data:`EXCLUDED_FROM_MODEL`: ``genre``,
        ``statut_marital``) are not returned, so a prediction for a stored employee does not
        copy them into its recorded input (data minimisation, as ``POST /v1/predictions``).
        """
        try:
            async with self.pool.connection() as conn:
                row = await employees.get_features(conn, id_employee)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailableError("La base de données est indisponible.") from exc
        if row is None:
            raise NotFoundError(f"Employé {id_employee} inconnu : aucun dossier enregistré.")
        return {name: value for name, value in row.items() if name not in EXCLUDED_FROM_MODEL}
