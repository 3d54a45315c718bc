"""A large request is scored while PostgreSQL writes its inputs, in one transaction.

Pins what ``attrition.services.batches`` promises: the inputs are on their way to the server
before the last rows are scored (the overlap the batch's speed comes from), a failure at any
point of the scoring leaves nothing written, and the rows are those of the plain path
(``tests/api/test_batch_path.py`` compares the answers and records row for row).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.app import create_app
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import Settings
from attrition.db import bulk, chain
from attrition.db.engine import Database, libpq_conninfo
from attrition.db.writer import LARGE_GROUP
from attrition.model import explanations
from attrition.services import batches, predictions
from tests.helpers import TEST_AUDIT_KEY, Keys, auth

BODY = {"employes": [{**EXAMPLE_EMPLOYEE, "age": 25 + n % 35} for n in range(LARGE_GROUP)]}

# The batch's own connection, seen from another one while the model scores: in its
# transaction, copying the inputs (or already the outputs) or between the two.
_COPYING = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND usename = current_user AND state IN ('active', 'idle in transaction') AND query LIKE 'COPY predict%'"
)
_COPYING_OUTPUTS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND usename = current_user AND state = 'active' AND query LIKE 'COPY predictions (%'"
)
# A transaction left open by a failed batch. The background sealer's own transaction is not
# one: it holds the sealer's advisory lock (chain.LOCK_ID) and is idle in transaction while
# it links a round's rows in Python, which a check made at that moment would count.
_LEFT_OPEN = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND usename = current_user AND state LIKE 'idle in transaction%' "
    "AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
    f"AND classid = 0 AND objid = {chain.LOCK_ID} AND objsubid = 1) "
    # A sealer that missed the lock, between its try and the end of its transaction.
    "AND query NOT LIKE 'SELECT pg_try_advisory_xact_lock(%'"
)


def _count(database: Database, sql: str) -> int:
    """``sql`` as the application role, which sees what its own sessions run."""
    with psycopg.connect(libpq_conninfo(database.app_url), autocommit=True) as c:
        row = c.execute(sql).fetchone()
    return int(row[0]) if row else 0


_COLUMNS = "i.batch_row, i.age, p.probability, p.record_mac, p.latency_ms"


def _rows(database: Database, request_id: str, columns: str = _COLUMNS) -> list[Any]:
    """The request's recorded rows in batch order (``columns``: from this module only)."""
    with database.owner_engine().connect() as c:
        return list(
            c.execute(
                text(
                    f"SELECT {columns} "
                    "FROM prediction_inputs i JOIN predictions p ON p.input_id = i.id "
                    "WHERE i.client_request_id = :r ORDER BY i.batch_row"
                ),
                {"r": request_id},
            )
        )


@pytest.fixture
def lenient(database: Database, settings: Settings, model_version: str) -> Iterator[TestClient]:
    """A client whose server errors come back as 500 answers (the failure tests)."""
    with TestClient(create_app(settings, database=database), raise_server_exceptions=False) as c:
        yield c


def _post(client: TestClient, key: str) -> tuple[str, Any]:
    request_id = f"lot-{uuid.uuid4().hex}"
    response = client.post(
        "/v1/predictions/batch", json=BODY, headers={**auth(key), "X-Request-ID": request_id}
    )
    return request_id, response


def _explained_with(monkeypatch: pytest.MonkeyPatch, hook: Callable[[int | None], None]) -> None:
    """Call ``hook`` before the model's pass (None) and before each row's explanation."""
    real = predictions.scores

    def watched(model: Any, columns: Any, *args: Any) -> explanations.Scores:
        hook(None)
        scored = real(model, columns, *args)

        def explain(i: int) -> dict[str, Any]:
            hook(i)
            return scored.explain(i)

        return explanations.Scores(scored.probabilities, explain)

    monkeypatch.setattr(predictions, "scores", watched)


def test_inputs_are_written_while_the_batch_is_scored(
    client: TestClient, keys: Keys, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[int | None, int] = {}
    last_chunk = LARGE_GROUP - batches.CHUNK

    def hook(row: int | None) -> None:
        if row is None or row == last_chunk:
            seen[row] = _count(database, _COPYING)

    _explained_with(monkeypatch, hook)
    request_id, response = _post(client, keys.predicteur)
    assert response.status_code == 201, response.text
    assert seen[None] == 0  # the model's pass: the identifiers are being reserved
    assert seen[last_chunk] == 1, f"the inputs were not sent before the last chunk: {seen}"
    rows = _rows(database, request_id)
    assert [(r.batch_row, r.age) for r in rows] == [(n, 25 + n % 35) for n in range(LARGE_GROUP)]
    answered = [p["probabilite_depart"] for p in response.json()["predictions"]]
    assert [r.probability for r in rows] == answered
    assert len({r.latency_ms for r in rows}) == 1  # the model's pass, per row
    ids = [p["prediction_id"] for p in response.json()["predictions"]]
    with database.owner_engine().connect() as c:
        stored = list(c.execute(text(chain.RECORD_SQL + "WHERE p.id = ANY(:ids)"), {"ids": ids}))
    key = chain.AuditKey.derive(TEST_AUDIT_KEY)
    assert len(stored) == LARGE_GROUP
    assert all(chain.record_mac(key, list(row[2:])) == row[1] for row in stored)


def test_the_inputs_are_sent_before_the_first_row_is_explained(
    client: TestClient, keys: Keys, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model runs while the identifiers are reserved; then the inputs go to the server
    before the first row is explained and signed, so that PostgreSQL writes them meanwhile
    (started after the signing, its own work ended after the last row was signed)."""
    events: list[str] = []
    real_row = bulk.input_row

    def input_row(source: Any) -> tuple[Any, ...]:
        events.append("input")
        return real_row(source)

    monkeypatch.setattr(bulk, "input_row", input_row)
    _explained_with(monkeypatch, lambda row: events.append("model" if row is None else "explain"))
    request_id, response = _post(client, keys.predicteur)
    assert response.status_code == 201, response.text
    assert events[0] == "model"
    assert events.index("input") < events.index("explain"), events[:5]
    assert events.count("input") == LARGE_GROUP
    assert [r.batch_row for r in _rows(database, request_id)] == list(range(LARGE_GROUP))


def test_outputs_are_copied_before_the_last_chunk_is_signed(
    client: TestClient, keys: Keys, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL checks the first outputs while the last rows are still being signed."""
    # Small chunks: the copying task needs three turns of the loop between two chunks (the
    # end of the inputs' COPY, the start of the outputs', the first rows), each one answer
    # of the server later than the one before; twenty chunks leave it nineteen turns.
    chunk = 25
    monkeypatch.setattr(batches, "CHUNK", chunk)
    seen: list[int] = []
    last_chunk = LARGE_GROUP - chunk

    def hook(row: int | None) -> None:
        if row is not None and row % chunk == 0 and row < last_chunk:
            time.sleep(0.02)  # a slow chunk: the server has answered meanwhile
        if row == last_chunk:
            seen.append(_count(database, _COPYING_OUTPUTS))

    _explained_with(monkeypatch, hook)
    request_id, response = _post(client, keys.predicteur)
    assert response.status_code == 201, response.text
    assert seen == [1], "the outputs waited for the last chunk"
    rows = _rows(database, request_id)
    assert [r.batch_row for r in rows] == list(range(LARGE_GROUP))
    answered = [p["probabilite_depart"] for p in response.json()["predictions"]]
    assert [r.probability for r in rows] == answered


@pytest.mark.parametrize("failing_row", [None, 0, batches.CHUNK + 1, LARGE_GROUP - 1])
def test_a_scoring_failure_leaves_nothing_written(
    lenient: TestClient,
    keys: Keys,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    failing_row: int | None,
) -> None:
    """The model fails in its pass over every row, or while one chunk is explained."""
    reached: list[int | None] = []

    def hook(row: int | None) -> None:
        reached.append(row)
        if row == failing_row:
            raise RuntimeError("panne du modèle au milieu du lot")

    _explained_with(monkeypatch, hook)
    request_id, response = _post(lenient, keys.predicteur)
    assert response.status_code == 500
    assert reached[-1] == failing_row
    assert _rows(database, request_id) == []
    assert _count(database, _LEFT_OPEN) == 0  # no transaction left open
    monkeypatch.undo()
    request_id, response = _post(lenient, keys.predicteur)
    assert response.status_code == 201, response.text
    assert len(_rows(database, request_id)) == LARGE_GROUP


def test_a_left_open_transaction_is_counted_and_the_sealers_is_not(database: Database) -> None:
    info = libpq_conninfo(database.app_url)
    with psycopg.connect(info) as sealer, psycopg.connect(info) as left:
        sealer.execute("SELECT pg_advisory_xact_lock(%s)", (chain.LOCK_ID,))
        assert _count(database, _LEFT_OPEN) == 0  # the sealer between two statements
        left.execute("SELECT 1")
        assert _count(database, _LEFT_OPEN) == 1


def test_a_sealer_that_missed_the_lock_is_not_counted(database: Database) -> None:
    # A background sealer that finds the lock taken ends its transaction at once; until it
    # does, it sits idle in a transaction without the lock (seen once in CI).
    info = libpq_conninfo(database.app_url)
    with psycopg.connect(info) as holder, psycopg.connect(info) as missed:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (chain.LOCK_ID,))
        row = missed.execute("SELECT pg_try_advisory_xact_lock(%s)", (chain.LOCK_ID,)).fetchone()
        assert row == (False,)
        assert _count(database, _LEFT_OPEN) == 0


def test_the_database_lost_while_the_batch_is_scored_gives_a_503_and_writes_nothing(
    lenient: TestClient, keys: Keys, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection copying the inputs is killed while the last chunk is signed."""
    last_chunk = LARGE_GROUP - batches.CHUNK
    killed: list[int] = []

    def hook(row: int | None) -> None:
        if row == last_chunk:
            with psycopg.connect(libpq_conninfo(database.app_url), autocommit=True) as c:
                found = c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = current_user AND pid <> pg_backend_pid() "
                    "AND query LIKE 'COPY predict%'"
                ).fetchall()
            killed.append(len(found))

    _explained_with(monkeypatch, hook)
    request_id, response = _post(lenient, keys.predicteur)
    assert killed == [1]
    assert response.status_code == 503, response.text
    assert "n'a pas été enregistrée" in response.json()["detail"]
    assert _rows(database, request_id) == []
    monkeypatch.undo()
    request_id, response = _post(lenient, keys.predicteur)
    assert response.status_code == 201, response.text
    assert len(_rows(database, request_id)) == LARGE_GROUP


def test_each_payload_and_explanation_is_serialised_once_for_its_mac_and_its_copy(
    client: TestClient, keys: Keys, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JSON a record's MAC covers is the JSON the COPY sends: no second serialisation of
    the request's payload or of the explanation per row, and what is stored is unchanged."""
    serialised: list[Any] = []
    real = bulk._text

    def counted(value: Any) -> str:
        serialised.append(value)
        return real(value)

    monkeypatch.setattr(bulk, "_text", counted)
    request_id, response = _post(client, keys.predicteur)
    assert response.status_code == 201, response.text
    assert serialised == []
    answered = response.json()["predictions"]
    stored = _rows(database, request_id, "i.payload, p.explanation")
    assert [row.payload for row in stored] == BODY["employes"]
    assert [row.explanation for row in stored] == [p["explication"] for p in answered]
