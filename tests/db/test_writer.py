"""Group commit: concurrent requests share one statement, each answered after the COMMIT."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text

from attrition.api.app import create_app
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import Settings
from attrition.db.audit import insert_predictions
from attrition.db.engine import Database, libpq_conninfo
from attrition.db.writer import LARGE_GROUP, GroupCommitWriter
from tests.db.writing import record, with_writer
from tests.helpers import TEST_AUDIT_KEY, Keys, auth

COLUMNS = (
    "i.source, i.id_employee, i.batch_id, i.batch_row, i.api_key_id, i.genre, i.age, "
    "i.augmentation_salaire_precedente, i.heures_supplementaires, i.payload, p.probability, "
    "p.label, p.threshold, p.risk_level, p.explanation, p.latency_ms, p.model_version_id"
)


def stored(database: Database, request_ids: list[str]) -> list[tuple[Any, ...]]:
    with database.owner_engine().connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT coalesce(i.client_request_id, i.request_id), {COLUMNS} FROM predictions p "
                "JOIN prediction_inputs i ON i.id = p.input_id "
                "WHERE coalesce(i.client_request_id, i.request_id) = ANY(:ids) "
                "ORDER BY i.request_id"
            ),
            {"ids": request_ids},
        )
        return [tuple(r) for r in rows]


def test_concurrent_writes_share_a_commit_and_keep_their_own_rows(
    database: Database, model_id: int
) -> None:
    ids = [f"gc-concurrent-{n:02d}" for n in range(30)]

    async def work(writer: GroupCommitWriter, _pool: Any) -> Any:
        return await asyncio.gather(*(writer.write([record(i, model_id)]) for i in ids))

    results = [c.written for c in with_writer(database, work)]
    assert [len(r) for r in results] == [1] * 30
    written = [r[0] for r in results]
    assert len({w.prediction_id for w in written}) == 30
    assert all(w.prediction_id and w.input_id for w in written)
    # One statement is one transaction: now() is the same for the whole group.
    assert len({w.created_at for w in written}) < 30
    assert len(stored(database, ids)) == 30


def test_rows_are_those_of_insert_predictions(database: Database, model_id: int) -> None:
    async def work(writer: GroupCommitWriter, pool: Any) -> None:
        async with pool.connection() as conn, conn.transaction():
            await insert_predictions(conn, [record("gc-same-a", model_id)])
        await writer.write([record("gc-same-b", model_id)])

    with_writer(database, work)
    a, b = stored(database, ["gc-same-a", "gc-same-b"])
    assert a[1:] == b[1:]


@pytest.mark.parametrize("size", [50, LARGE_GROUP])
def test_a_batch_keeps_its_order(database: Database, model_id: int, size: int) -> None:
    # LARGE_GROUP records take the COPY path (attrition.db.bulk), in a transaction of its own.
    batch = str(uuid.uuid4())
    request_id = f"gc-batch-{size}"
    records = [
        record(request_id, model_id, batch_id=batch, batch_row=n, probability=n / size)
        for n in range(size)
    ]

    async def work(writer: GroupCommitWriter, _pool: Any) -> Any:
        return (await writer.write(records)).written

    written = with_writer(database, work)
    assert len(written) == size
    assert [w.input_id for w in written] == sorted(w.input_id for w in written)
    with database.owner_engine().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.id, i.batch_row, p.probability FROM predictions p "
                "JOIN prediction_inputs i ON i.id = p.input_id WHERE i.request_id = :r"
            ),
            {"r": request_id},
        ).all()
    by_id = {r[0]: (r[1], r[2]) for r in rows}
    assert len(by_id) == size
    assert [by_id[w.prediction_id] for w in written] == [(n, n / size) for n in range(size)]


def test_a_bad_record_fails_only_its_request(database: Database, model_id: int) -> None:
    async def work(writer: GroupCommitWriter, _pool: Any) -> Any:
        return await asyncio.gather(
            writer.write([record("gc-good-1", model_id)]),
            writer.write([record("gc-bad", model_id, probability=2.0)]),
            writer.write([record("gc-good-2", model_id)]),
            return_exceptions=True,
        )

    first, bad, last = with_writer(database, work)
    first, last = first.written, last.written
    assert isinstance(bad, psycopg.errors.CheckViolation)
    assert len(first) == len(last) == 1
    assert [r[0] for r in stored(database, ["gc-good-1", "gc-bad", "gc-good-2"])] == [
        "gc-good-1",
        "gc-good-2",
    ]


def test_a_stopped_writer_refuses(database: Database) -> None:
    async def main() -> None:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            libpq_conninfo(database.app_url), min_size=1, max_size=1, open=False
        )
        writer = GroupCommitWriter(pool)
        with pytest.raises(psycopg.OperationalError):
            await writer.write([])

    asyncio.run(main())


def test_api_with_group_commit(
    database: Database, settings: Settings, keys: Keys, model_version: str
) -> None:
    grouped = settings.model_copy(
        update={"db": settings.db.model_copy(update={"group_commit": True})}
    )
    app = create_app(grouped, database=database)
    with TestClient(app) as client:
        assert app.state.service.writer is not None
        one = client.post(
            "/v1/predictions",
            json=EXAMPLE_EMPLOYEE,
            headers={**auth(keys.predicteur), "X-Request-ID": "gc-api-one"},
        )
        assert one.status_code == 201, one.text
        batch = client.post(
            "/v1/predictions/batch",
            json={"employes": [EXAMPLE_EMPLOYEE] * 3},
            headers={**auth(keys.predicteur), "X-Request-ID": "gc-api-batch"},
        )
        assert batch.status_code == 201, batch.text
        unknown = client.post(
            "/v1/predictions",
            json={**EXAMPLE_EMPLOYEE, "id_employee": 999_999},
            headers=auth(keys.predicteur),
        )
        assert unknown.status_code == 404
        read = client.get(
            f"/v1/predictions/{one.json()['prediction_id']}", headers=auth(keys.predicteur)
        )
        assert read.status_code == 200
        assert read.json()["client_request_id"] == "gc-api-one"
        assert read.json()["request_id"] == one.headers["x-server-request-id"]
    assert len(stored(database, ["gc-api-one"])) == 1
    assert len(stored(database, ["gc-api-batch"])) == 3


def _take(key: str, amount: int) -> Any:
    from attrition.db.usage import Take

    return Take("test", key, 21_000, amount, 1_000_000)


async def _hold_count(conn: Any, key: str) -> None:
    await conn.execute(
        "SELECT used FROM usage_counters WHERE counter = 'test' AND key = %s FOR UPDATE", (key,)
    )


def test_small_groups_go_one_at_a_time(database: Database, model_id: int) -> None:
    """While a small group is being written, the requests that arrive wait and then go
    together: one more statement in flight would only split them into smaller groups (each
    paying its own statement and commit) and make them wait for the same key's count."""
    key = f"turn-{uuid.uuid4().hex[:8]}"

    async def work(writer: GroupCommitWriter, pool: Any) -> list[Any]:
        await writer.write([record(f"{key}-first", model_id)], _take(key, 1))
        async with pool.connection() as holder:
            async with holder.transaction():
                await _hold_count(holder, key)
                held = asyncio.create_task(
                    writer.write([record(f"{key}-held", model_id)], _take(key, 1))
                )
                await asyncio.sleep(0.1)  # the held group waits for the count
                others = []
                for n in range(5):  # arriving one after the other
                    others.append(
                        asyncio.create_task(writer.write([record(f"{key}-other-{n}", model_id)]))
                    )
                    await asyncio.sleep(0.03)
        await held
        return [(await task).written[0] for task in others]

    written = with_writer(database, work)
    assert len({w.created_at for w in written}) == 1  # one group, one transaction


def test_a_batch_does_not_hold_back_small_groups(database: Database, model_id: int) -> None:
    """A batch (COPY) has its own turn: while it waits, single predictions are still written."""
    key = f"batch-turn-{uuid.uuid4().hex[:8]}"

    async def work(writer: GroupCommitWriter, pool: Any) -> tuple[bool, bool]:
        await writer.write([record(f"{key}-first", model_id)], _take(key, 1))
        async with pool.connection() as holder:
            async with holder.transaction():
                await _hold_count(holder, key)
                rows = [record(f"{key}-b{n}", model_id) for n in range(LARGE_GROUP)]
                batch = asyncio.create_task(writer.write(rows, _take(key, LARGE_GROUP)))
                await asyncio.sleep(0.1)  # the batch waits for its key's count
                small = await asyncio.wait_for(
                    writer.write([record(f"{key}-small", model_id)]), timeout=0.8
                )
                waiting = not batch.done()
        await batch
        return len(small.written) == 1, waiting

    assert with_writer(database, work) == (True, True)


def test_small_groups_keep_one_connection(database: Database, model_id: int) -> None:
    """The writer keeps one of the pool's connections for its small groups: lending one,
    checking its socket and switching it to autocommit and back cost every group as much
    CPU as its statement's own client work at concurrency 1."""

    async def work(writer: GroupCommitWriter, pool: Any) -> int:
        before = pool.get_stats().get("requests_num", 0)
        for n in range(10):
            await writer.write([record(f"gc-held-{uuid.uuid4().hex[:8]}-{n}", model_id)])
        return int(pool.get_stats().get("requests_num", 0) - before)

    assert with_writer(database, work) <= 1


def test_small_groups_keep_one_cursor(database: Database, model_id: int) -> None:
    """The kept connection keeps its cursor too: a cursor made and closed per group cost
    each lone statement about 10 µs of the process's CPU (measured, uvloop)."""
    made: list[int] = []

    class Counted(psycopg.AsyncConnection):  # type: ignore[type-arg]
        def cursor(self, *args: Any, **kwargs: Any) -> Any:
            made.append(1)
            return super().cursor(*args, **kwargs)

    async def main() -> int:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            libpq_conninfo(database.app_url),
            connection_class=Counted,
            min_size=1,
            max_size=4,
            open=False,
        )
        await pool.open()
        writer = GroupCommitWriter(pool)
        await writer.start()
        try:
            for n in range(10):
                await writer.write([record(f"gc-cursor-{uuid.uuid4().hex[:8]}-{n}", model_id)])
            return len(made)
        finally:
            await writer.close()
            await pool.close()

    assert asyncio.run(main()) == 1


def test_a_lone_request_is_written_by_its_own_task(database: Database, model_id: int) -> None:
    """On an idle writer, the request writes its own group: no hop through the writer's task
    (a task and two event-loop turns more per request at concurrency 1)."""
    borrowers: list[asyncio.Task[Any] | None] = []

    class Watched(AsyncConnectionPool):
        async def getconn(self, timeout: float | None = None) -> Any:
            borrowers.append(asyncio.current_task())
            return await super().getconn(timeout)

    async def main() -> tuple[bool, int]:
        pool = Watched(libpq_conninfo(database.app_url), min_size=1, max_size=4, open=False)
        await pool.open()
        writer = GroupCommitWriter(pool)
        await writer.start()
        try:
            committed = await writer.write([record(f"gc-lone-{uuid.uuid4().hex[:8]}", model_id)])
            return asyncio.current_task() in borrowers, len(committed.written)
        finally:
            await writer.close()
            await pool.close()

    assert asyncio.run(main()) == (True, 1)


def test_the_kept_connection_is_replaced_when_the_server_drops_it(
    database: Database, model_id: int
) -> None:
    """After a restart or ``pg_terminate_backend``, the next group is written on a new
    connection instead of failing (the pool's socket check, applied to the kept one)."""
    tag = uuid.uuid4().hex[:8]

    async def work(writer: GroupCommitWriter, pool: Any) -> int:
        await writer.write([record(f"gc-drop-{tag}-1", model_id)])
        info = libpq_conninfo(database.app_url)
        async with await psycopg.AsyncConnection.connect(info, autocommit=True) as same_role:
            cur = await same_role.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE usename = current_user AND pid <> pg_backend_pid() "
                "AND datname = current_database()"
            )
            row = await cur.fetchone()
            killed = row[0] if row else 0
        await asyncio.sleep(0.2)  # the server's goodbye reaches the sockets
        second = await writer.write([record(f"gc-drop-{tag}-2", model_id)])
        assert len(second.written) == 1
        return int(killed)

    assert with_writer(database, work) >= 1
    assert len(stored(database, [f"gc-drop-{tag}-1", f"gc-drop-{tag}-2"])) == 2


def test_records_travel_as_the_bytes_their_mac_covers(database: Database, model_id: int) -> None:
    """Each record goes to PostgreSQL as the canonical array its MAC covers, plus the MAC:
    no second document keyed by column name (PostgreSQL parsed and sorted every key of every
    record: a tenth of its CPU per prediction), and what is stored is what was signed."""
    from attrition.db import chain
    from attrition.db.writer import records_json

    tag = uuid.uuid4().hex[:8]
    made = [record(f"gc-bytes-{tag}-{n}", model_id) for n in range(3)]
    document = records_json(made)
    signed = [chain.canonical(r.mac_values()) for r in made]
    assert document == (
        b"["
        + b",".join(s[:-1] + b',"' + r.record_mac.encode() + b'"]' for s, r in zip(signed, made))
        + b"]"
    )

    async def work(writer: GroupCommitWriter, _pool: Any) -> Any:
        return await asyncio.gather(*(writer.write([r]) for r in made))

    with_writer(database, work)
    key = chain.AuditKey.derive(TEST_AUDIT_KEY)
    with database.owner_engine().connect() as conn:
        rows = conn.execute(
            text(chain.RECORD_SQL + "WHERE i.request_id = ANY(:ids) ORDER BY i.request_id"),
            {"ids": [r.request_id for r in made]},
        ).all()
    assert [row[1] for row in rows] == [r.record_mac for r in made]
    assert [chain.record_mac(key, list(row[2:])) for row in rows] == [r.record_mac for r in made]


def test_each_field_is_cast_to_its_column_type(database: Database) -> None:
    """The writer casts each element to its column's type, or to one PostgreSQL assigns to
    it with a check (an int to a smallint, a text to a bounded varchar): never a silent
    truncation, and never a value the column would read differently."""
    from attrition.db.chain import INPUT_FIELDS, OUTPUT_FIELDS
    from attrition.db.writer_sql import cast_type

    assignable = {("int", "smallint"), ("int", "integer"), ("text", "character varying")}
    assignable |= {("float8", "double precision")}
    with database.owner_engine().connect() as conn:
        types = dict(
            conn.execute(
                text(
                    "SELECT attrelid::regclass::text || '.' || attname, format_type(atttypid, NULL) "
                    "FROM pg_attribute WHERE attnum > 0 AND NOT attisdropped "
                    "AND attrelid IN ('prediction_inputs'::regclass, 'predictions'::regclass)"
                )
            ).all()
        )
    fields = [("prediction_inputs", n, k) for n, k in INPUT_FIELDS]
    fields += [("predictions", n, k) for n, k in OUTPUT_FIELDS]
    wrong = [
        (name, cast_type(name, kind), types[f"{table}.{name}"])
        for table, name, kind in fields
        if cast_type(name, kind) != types[f"{table}.{name}"]
        and (cast_type(name, kind), types[f"{table}.{name}"]) not in assignable
    ]
    assert wrong == []


def test_a_lone_record_is_stored_as_in_a_group(database: Database, model_id: int) -> None:
    """A lone request of one record has its own statement (no array to unnest, number and
    sort): the row it stores is the one a group stores, and it pays its take the same way."""
    from attrition.db import chain

    tag = f"gc-one-{uuid.uuid4().hex[:8]}"
    changes = {"id_employee": None, "batch_row": 0, "latency_ms": 0.5, "probability": 0.75}
    lone, first, second = (record(f"{tag}-{n}", model_id, **changes) for n in ("a", "b", "c"))

    async def work(writer: GroupCommitWriter, _pool: Any) -> tuple[Any, Any]:
        alone = await writer.write([lone], _take(tag, 1))
        together = await writer.write([first, second], _take(tag, 2))
        return alone, together

    alone, together = with_writer(database, work)
    assert (len(alone.written), alone.used) == (1, 1)
    assert (len(together.written), together.used) == (2, 3)
    with database.owner_engine().connect() as conn:
        rows = conn.execute(
            text(chain.RECORD_SQL + "WHERE i.request_id = ANY(:ids) ORDER BY i.request_id"),
            {"ids": [lone.request_id, first.request_id]},
        ).all()
    request_id = 2  # p.id, p.record_mac, then the fields: request_id first
    assert [row[request_id] for row in rows] == [lone.request_id, first.request_id]
    assert rows[0][request_id + 1 :] == rows[1][request_id + 1 :]
