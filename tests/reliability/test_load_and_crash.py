"""Under load, killed, or stopped: a real server (`attrition serve`) loses no prediction.

Half of the requests carry an Idempotency-Key (written in their own transaction), half do
not (written by the group-commit writer), so that both write paths are under test.

* load: N requests from 32 concurrent clients; every 201 has exactly its input and its output,
  with the values returned, and nothing else was written;
* SIGKILL in the middle of a load run: no input without its output; the server restarts and
  serves; every request without an answer that carries a key is sent again and ends with
  exactly one prediction (replayed when it had been recorded before the kill); one without a
  key has at most one (the client cannot know: that is what the key is for);
* SIGTERM: the requests in flight are answered, then the server exits with status 0.

ATTRITION_SOAK_REQUESTS sets N (300 in `make test`, 2,000 in `make soak`)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from attrition.config import Settings
from attrition.db.engine import Database
from tests.helpers import Keys, orphan_inputs
from tests.reliability import load
from tests.reliability.figures import Figures, fr
from tests.reliability.server import Server, start_server

REQUESTS = int(os.environ.get("ATTRITION_SOAK_REQUESTS", "300"))
CLIENTS = 32
DEADLINE_S = 120 + REQUESTS * 0.2


class Servers:
    """The module's servers: one is started when needed and handed from test to test (a start
    costs seconds), the crash test restarts it; none outlives the module."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        self.started: list[Server] = []

    def current(self) -> Server:
        if not self.started or self.started[-1].process.poll() is not None:
            self.started.append(start_server(self.database, self.settings))
        return self.started[-1]

    def restart(self) -> Server:
        assert self.started[-1].process.poll() is not None
        return self.current()


@pytest.fixture(scope="module")
def servers(database: Database, settings: Settings, model_version: str) -> Iterator[Servers]:
    servers = Servers(database, settings)
    yield servers
    for server in servers.started:
        if server.process.poll() is None:
            server.kill()
        server.log.unlink(missing_ok=True)


def recorded(database: Database, prefix: str) -> list[dict[str, Any]]:
    """Inputs of a run (by request id prefix) with their output, if any."""
    with database.owner_engine().connect() as c:
        rows = c.execute(
            text(
                "SELECT i.client_request_id AS request_id, i.idempotency_key, i.id AS input_id, i.age, "
                "i.revenu_mensuel, p.id AS prediction_id, p.input_id AS output_input_id, "
                "p.probability, p.label::text AS label "
                "FROM prediction_inputs i LEFT JOIN predictions p ON p.input_id = i.id "
                "WHERE i.client_request_id LIKE :prefix ORDER BY i.id"
            ),
            {"prefix": f"{prefix}-%"},
        ).mappings()
        return [dict(r) for r in rows]


def unmatched(outcomes: list[load.Outcome], rows: list[dict[str, Any]]) -> list[str]:
    """The 201 responses that do not have exactly one input and one output with their values."""
    by_request: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_request.setdefault(row["request_id"], []).append(row)
    lost = []
    for outcome in outcomes:
        if outcome.status != 201:
            continue
        assert outcome.response is not None
        found = by_request.get(outcome.request_id, [])
        if len(found) != 1:
            lost.append(f"{outcome.request_id}: {len(found)} ligne(s)")
            continue
        row, sent, got = found[0], outcome.body, outcome.response
        if (
            row["prediction_id"] != got["prediction_id"]
            or row["output_input_id"] != row["input_id"]
            or row["probability"] != got["probabilite_depart"]
            or row["label"] != got["prediction"]
            or (row["age"], row["revenu_mensuel"]) != (sent["age"], sent["revenu_mensuel"])
            or row["idempotency_key"] != outcome.idempotency_key
        ):
            lost.append(f"{outcome.request_id}: {row} != {got}")
    return lost


def check_run(
    outcomes: list[load.Outcome], rows: list[dict[str, Any]]
) -> tuple[list[str], int, int]:
    """Lost answers, rows written for requests left without an answer, inputs without output.

    Asserts what must hold whatever happened: a 201 has its rows (else it is lost), nothing is
    written twice, a 503 wrote nothing, and a request without an answer wrote at most once.
    """
    lost = unmatched(outcomes, rows)
    per_request = Counter(r["request_id"] for r in rows)
    assert not per_request or max(per_request.values()) == 1, per_request.most_common(3)
    status = {o.request_id: o.status for o in outcomes}
    assert all(status[request_id] in (201, None) for request_id in per_request)
    unanswered_written = sum(status[request_id] is None for request_id in per_request)
    without_output = sum(r["prediction_id"] is None for r in rows)
    return lost, unanswered_written, without_output


def test_concurrent_load_loses_nothing(
    database: Database,
    keys: Keys,
    servers: Servers,
    figures: Figures,
) -> None:
    server = servers.current()
    prefix = f"charge-{uuid.uuid4().hex[:10]}"
    outcomes = load.plan(prefix, REQUESTS)
    elapsed = asyncio.run(
        load.run(
            server.base_url, keys.predicteur, outcomes, concurrency=CLIENTS, deadline_s=DEADLINE_S
        )
    )
    errors = Counter(o.error for o in outcomes if o.error)
    unanswered = [o for o in outcomes if o.status is None]
    assert len(unanswered) <= REQUESTS // 100, (errors, server.log_tail())
    # A request left without an answer (a network error) is sent again with its key, as a
    # client should; one without a key cannot be, safely.
    retried = [o for o in unanswered if o.idempotency_key is not None]
    if retried:
        asyncio.run(
            load.run(server.base_url, keys.predicteur, retried, concurrency=4, deadline_s=60)
        )
    statuses = Counter(o.status for o in outcomes)
    assert set(statuses) <= {201, 503, None}, (statuses, errors)
    created = [o for o in outcomes if o.status == 201]
    assert len(created) >= 0.95 * REQUESTS, statuses
    rows = recorded(database, prefix)
    lost, unanswered_written, without_output = check_run(outcomes, rows)
    assert lost == []
    assert len(rows) == len(created) + unanswered_written
    assert without_output == 0 and orphan_inputs(database) == 0
    latencies = [o.seconds * 1000 for o in created]
    figures.section(
        "charge",
        requetes=REQUESTS,
        clients=CLIENTS,
        reponses_201=len(created),
        reponses_503=statuses.get(503, 0),
        sans_reponse=len(unanswered),
        erreurs_reseau_rejouees=len(retried),
        lignes_entree=len(rows),
        lignes_sortie=len(rows) - without_output,
        enregistrements_perdus=len(lost),
        entrees_sans_sortie=without_output,
        duree_s=round(elapsed, 2),
        debit_par_s=round(REQUESTS / elapsed, 1),
        latence_p50_ms=round(load.percentile(latencies, 0.50), 1),
        latence_p95_ms=round(load.percentile(latencies, 0.95), 1),
    )


def test_sigkill_mid_load_loses_nothing_and_restarts(
    database: Database,
    keys: Keys,
    servers: Servers,
    figures: Figures,
) -> None:
    with figures.fault(
        "Arrêt brutal du serveur (SIGKILL) pendant une charge",
        f"kill -9 du processus au milieu de {fr(REQUESTS)} requêtes de {CLIENTS} clients",
        "aucune entrée sans sortie, aucune réponse 201 perdue ; redémarrage propre ; chaque "
        "requête sans réponse renvoyée avec sa clé d'idempotence donne exactement une prédiction",
    ) as fault:
        server = servers.current()
        prefix = f"crash-{uuid.uuid4().hex[:10]}"
        outcomes = load.plan(prefix, REQUESTS)
        kill_after = max(20, REQUESTS // 4)

        async def load_then_kill() -> None:
            async def killer() -> None:
                while sum(o.finished_at > 0 for o in outcomes) < kill_after:
                    await asyncio.sleep(0.002)
                server.signal(signal.SIGKILL)

            task = asyncio.create_task(killer())
            await load.run(
                server.base_url,
                keys.predicteur,
                outcomes,
                concurrency=CLIENTS,
                deadline_s=DEADLINE_S,
                stop=lambda: server.process.poll() is not None,
            )
            await task

        asyncio.run(load_then_kill())
        assert server.wait(30) == -signal.SIGKILL
        answered = [o for o in outcomes if o.status == 201]
        cut = [o for o in outcomes if o.finished_at > 0 and o.status is None]
        assert set(Counter(o.status for o in outcomes if o.finished_at > 0)) <= {201, 503, None}
        assert cut, "the kill should have cut requests in flight"
        rows = recorded(database, prefix)
        lost, cut_written, without_output = check_run(outcomes, rows)
        assert lost == [] and without_output == 0 and orphan_inputs(database) == 0

        restarted = servers.restart()
        # Sent again: every request with a key that got no answer, and those never sent.
        again = [
            o
            for o in outcomes
            if o.status != 201 and (o.idempotency_key is not None or o.finished_at == 0)
        ]
        keyed_written = {r["idempotency_key"] for r in rows if r["idempotency_key"]}
        expected_replays = sum(o.idempotency_key in keyed_written for o in again)
        for outcome in again:
            outcome.finished_at, outcome.status, outcome.error = 0.0, None, None
        asyncio.run(
            load.run(
                restarted.base_url,
                keys.predicteur,
                again,
                concurrency=CLIENTS,
                deadline_s=DEADLINE_S,
            )
        )
        assert Counter(o.status for o in again) == Counter({201: len(again)})
        replayed = sum(o.replayed for o in again)
        assert replayed == expected_replays
        rows = recorded(database, prefix)
        lost, ambiguous_written, without_output = check_run(outcomes, rows)
        assert lost == [] and without_output == 0 and orphan_inputs(database) == 0
        ambiguous = [o for o in outcomes if o.status is None]  # no key, cut by the kill
        assert all(o.idempotency_key is None for o in ambiguous)
        assert len(rows) == REQUESTS - len(ambiguous) + ambiguous_written
        duplicates = len(rows) - len({r["request_id"] for r in rows})
        fault["mesure"] = (
            f"avant l'arrêt : {fr(len(answered))} réponses 201 et {len(cut)} requêtes coupées "
            f"({cut_written} déjà enregistrées) ; après redémarrage : {fr(len(again))} "
            f"renvoyées, dont {replayed} rejouées à l'identique ; au total "
            f"{fr(len(rows))} prédictions, {len(lost)} perdue, {duplicates} doublon, "
            f"{without_output} entrée sans sortie"
        )
    figures.section(
        "crash",
        requetes=REQUESTS,
        clients=CLIENTS,
        reponses_avant_kill=len(answered),
        coupees_par_le_kill=len(cut),
        enregistrees_sans_reponse=cut_written,
        renvoyees_apres_redemarrage=len(again),
        rejouees=replayed,
        sans_cle_incertaines=len(ambiguous),
        predictions_finales=len(rows),
        enregistrements_perdus=len(lost),
        doublons=duplicates,
        entrees_sans_sortie=without_output,
    )


def test_sigterm_drains_requests_in_flight(
    database: Database,
    keys: Keys,
    servers: Servers,
    figures: Figures,
) -> None:
    with figures.fault(
        "Arrêt demandé (SIGTERM) avec des requêtes en cours",
        "SIGTERM au serveur dès la première réponse d'une rafale de 8 lots de 250 employés",
        "toutes les requêtes en cours reçoivent leur réponse, puis le serveur sort avec le code 0",
    ) as fault:
        server = servers.current()
        prefix = f"drain-{uuid.uuid4().hex[:10]}"
        batch = {"employes": [load.employee(i) for i in range(250)]}
        finished: dict[str, float] = {}

        async def burst() -> tuple[list[httpx.Response], float]:
            limits = httpx.Limits(max_connections=8)
            async with httpx.AsyncClient(
                base_url=server.base_url, limits=limits, timeout=60
            ) as client:

                async def post(i: int) -> httpx.Response:
                    request_id = f"{prefix}-{i}"
                    r = await client.post(
                        "/v1/predictions/batch",
                        json=batch,
                        headers={
                            "Authorization": f"Bearer {keys.predicteur}",
                            "X-Request-ID": request_id,
                        },
                    )
                    finished[request_id] = time.monotonic()
                    return r

                tasks = [asyncio.create_task(post(i)) for i in range(8)]
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                server.signal(signal.SIGTERM)
                signalled = time.monotonic()
                return list(await asyncio.gather(*tasks)), signalled

        responses, signalled = asyncio.run(burst())
        assert [r.status_code for r in responses] == [201] * 8, server.log_tail()
        drained = sum(t > signalled for t in finished.values())
        assert drained >= 1, "no request was still in flight at SIGTERM"
        assert server.wait(60) == 0, server.log_tail()
        with database.owner_engine().connect() as c:
            written = c.scalar(
                text(
                    "SELECT count(*) FROM prediction_inputs i JOIN predictions p "
                    "ON p.input_id = i.id WHERE i.client_request_id LIKE :p"
                ),
                {"p": f"{prefix}-%"},
            )
        assert written == 8 * 250
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.base_url}/health", timeout=2)
        fault["mesure"] = (
            f"{drained} requête(s) terminée(s) après le SIGTERM, 8 × 201, "
            f"{fr(int(written or 0))} prédictions enregistrées, code de sortie 0"
        )
