"""The audit hash chain: a deleted record is named; sealing never blocks predictions."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.cli import app as cli
from attrition.config import Settings, get_settings
from attrition.db import chain, verification
from attrition.db.engine import Database, libpq_conninfo
from attrition.security.secrets import audit_key
from tests.helpers import Keys, auth
from tests.reliability.figures import Figures, fr


async def _with_owner(database: Database, work: Any) -> Any:
    async with await psycopg.AsyncConnection.connect(libpq_conninfo(database.owner_url)) as conn:
        return await work(conn)


def _key() -> chain.AuditKey:
    return audit_key(get_settings())


def seal_all(database: Database) -> int:
    async def work(conn: psycopg.AsyncConnection[Any]) -> int:
        total = 0
        while (count := (await chain.seal(conn, _key(), wait=True))[0]) > 0:
            total += count
        return total

    return int(asyncio.run(_with_owner(database, work)))


def verify(database: Database) -> verification.Verification:
    result: verification.Verification = asyncio.run(
        _with_owner(database, lambda c: verification.verify(c, _key()))
    )
    return result


def _predict(client: TestClient, key: str) -> int:
    r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(key))
    assert r.status_code == 201, r.text
    return int(r.json()["prediction_id"])


def test_a_deleted_record_is_detected_and_named(
    client: TestClient, keys: Keys, database: Database, cli_env: CliRunner, figures: Figures
) -> None:
    ids = [_predict(client, keys.predicteur) for _ in range(3)]
    seal_all(database)
    assert verify(database).ok
    target = ids[1]
    with figures.fault(
        "Suppression d'un enregistrement scellé de la trace d'audit",
        "DELETE d'une prédiction et de son entrée par le propriétaire "
        "(SET LOCAL attrition.allow_purge = 'on'), validé",
        "`attrition audit verify` échoue (code 2) et nomme la prédiction supprimée",
    ) as fault:
        # One owner session: the deleted rows are kept in temporary tables to be put back.
        with database.owner_engine().connect() as owner:
            with owner.begin():
                owner.execute(
                    text("CREATE TEMP TABLE saved_p AS SELECT * FROM predictions WHERE id = :i"),
                    {"i": target},
                )
                owner.execute(
                    text(
                        "CREATE TEMP TABLE saved_i AS SELECT i.* FROM prediction_inputs i "
                        "JOIN predictions p ON p.input_id = i.id WHERE p.id = :i"
                    ),
                    {"i": target},
                )
                owner.execute(text("SET LOCAL attrition.allow_purge = 'on'"))
                owner.execute(text("DELETE FROM predictions WHERE id = :i"), {"i": target})
                owner.execute(
                    text("DELETE FROM prediction_inputs WHERE id IN (SELECT id FROM saved_i)")
                )
            try:
                broken = verify(database)
                assert broken.broken_at == target
                assert broken.reason == "enregistrement supprimé"
                result = cli_env.invoke(cli, ["audit", "verify"])
                assert result.exit_code == 2, result.output
                assert f"prédiction {target}" in result.output
                assert "enregistrement supprimé" in result.output
            finally:
                with owner.begin():
                    owner.execute(text("INSERT INTO prediction_inputs SELECT * FROM saved_i"))
                    owner.execute(text("INSERT INTO predictions SELECT * FROM saved_p"))
                    owner.execute(text("DROP TABLE saved_p, saved_i"))
        restored = verify(database)
        assert restored.ok, restored
        fault["mesure"] = (
            f"chaîne rompue à la prédiction {target} (« enregistrement supprimé »), "
            "code de sortie 2 ; intacte une fois l'enregistrement remis"
        )


def test_sealing_never_blocks_predictions(
    client: TestClient,
    keys: Keys,
    database: Database,
    settings: Settings,
    figures: Figures,
) -> None:
    """Predictions go on, at full speed, while a sealing transaction is open."""
    _predict(client, keys.predicteur)
    sealing, release = threading.Event(), threading.Event()
    need_row, row_ready = threading.Event(), threading.Event()
    sealed: list[int] = []

    async def hold_a_seal_open(conn: psycopg.AsyncConnection[Any]) -> None:
        async with conn.transaction():
            # The seal (advisory lock, read of the trail, links written) inside a transaction
            # kept open: anything it locks stays locked while the predictions run.
            count = (await chain.seal(conn, _key(), wait=True))[0]
            if count == 0:
                # The app's background sealer got there first. This transaction now holds the
                # sealers' lock, so a new prediction stays unsealed until it is sealed here.
                need_row.set()
                while not row_ready.is_set():
                    await asyncio.sleep(0.01)
                count = (await chain.seal(conn, _key(), wait=True))[0]
            sealed.append(count)
            sealing.set()
            while not release.is_set():
                await asyncio.sleep(0.01)

    holder = threading.Thread(
        target=lambda: asyncio.run(_with_owner(database, hold_a_seal_open)), daemon=True
    )
    bound = settings.db.lock_timeout_ms / 1000
    with figures.fault(
        "Scellement de la trace d'audit pendant des prédictions",
        "une transaction de scellement reste ouverte pendant 20 prédictions",
        f"toutes les prédictions répondent 201, chacune en moins de lock_timeout ({fr(bound, 's', 0)})",
    ) as fault:
        holder.start()
        try:
            deadline = time.monotonic() + 30
            while not sealing.wait(0.01):
                assert time.monotonic() < deadline, "the seal never started"
                if need_row.is_set() and not row_ready.is_set():
                    _predict(client, keys.predicteur)
                    row_ready.set()
            latencies = []
            for _ in range(20):
                started = time.perf_counter()
                _predict(client, keys.predicteur)
                latencies.append(time.perf_counter() - started)
        finally:
            release.set()
            holder.join(30)
        assert sealed and sealed[0] >= 1
        assert max(latencies) < bound, latencies
        seal_all(database)
        result = verify(database)
        assert result.ok and result.unsealed == 0, result
        fault["mesure"] = (
            f"20 × 201 pendant le scellement, la plus lente en {fr(max(latencies) * 1000, 'ms', 0)} ; "
            f"chaîne intacte ({result.checked} liens)"
        )
