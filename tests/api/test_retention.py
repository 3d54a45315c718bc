"""GDPR retention and access: a logged purge that keeps the chain verifiable; an export."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.cli import app as cli
from attrition.config import get_settings
from attrition.db import chain, verification
from attrition.db.engine import Database, libpq_conninfo
from attrition.db.retention import purge
from attrition.errors import ConflictError
from attrition.security.secrets import audit_key
from tests.helpers import Keys, auth


async def _in_rolled_back_transaction(db: Database, work: Any) -> Any:
    async with await psycopg.AsyncConnection.connect(libpq_conninfo(db.owner_url)) as conn:
        await conn.execute("BEGIN")
        try:
            return await work(conn)
        finally:
            await conn.execute("ROLLBACK")


def test_purge_is_logged_and_the_chain_still_verifies(
    client: TestClient, keys: Keys, database: Database
) -> None:
    for _ in range(2):
        client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))

    async def scenario(conn: psycopg.AsyncConnection[Any]) -> None:
        key = audit_key(get_settings())
        while (await chain.seal(conn, key, wait=True))[0]:
            pass
        cur = await conn.execute("SELECT count(*) FROM predictions")
        total = (await cur.fetchone())[0]  # type: ignore[index]
        report = await purge(conn, datetime.now(UTC) + timedelta(seconds=1))
        assert report.predictions == total and report.inputs == total
        cur = await conn.execute("SELECT count(*) FROM predictions")
        assert (await cur.fetchone())[0] == 0  # type: ignore[index]
        cur = await conn.execute(
            "SELECT predictions_deleted, executed_by FROM purge_log ORDER BY id DESC LIMIT 1"
        )
        logged = await cur.fetchone()
        assert logged is not None and logged[0] == total
        assert (await verification.verify(conn, key)).ok
        # Outside the purge, the purge record itself cannot be edited.
        await conn.execute("SET LOCAL attrition.allow_purge = 'off'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with conn.transaction():
                await conn.execute("UPDATE purge_log SET predictions_deleted = 0")

    asyncio.run(_in_rolled_back_transaction(database, scenario))


def test_purge_refuses_unsealed_records(client: TestClient, keys: Keys, database: Database) -> None:
    async def scenario(conn: psycopg.AsyncConnection[Any]) -> None:
        # The sealers' lock, held by this session: the app cannot seal the new prediction.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (chain.LOCK_ID,))
        r = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
        assert r.status_code == 201
        with pytest.raises(ConflictError, match="pas encore scellées"):
            await purge(conn, datetime.now(UTC) + timedelta(seconds=1))

    asyncio.run(_in_rolled_back_transaction(database, scenario))


def test_export_everything_about_one_employee(
    client: TestClient, keys: Keys, cli_env: CliRunner
) -> None:
    client.post("/v1/employees/1/predictions", headers=auth(keys.predicteur))
    result = cli_env.invoke(cli, ["rgpd", "export", "--employee-id", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["dossier"]["age"] == 41
    assert data["predictions"] and all(p["id_employee"] == 1 for p in data["predictions"])
    missing = cli_env.invoke(cli, ["rgpd", "export", "--employee-id", "3"])
    assert missing.exit_code == 1 and "Aucune donnée" in missing.output


def test_purge_command_with_nothing_old(cli_env: CliRunner) -> None:
    result = cli_env.invoke(cli, ["rgpd", "purge", "--older-than", "3650d", "--yes"])
    assert result.exit_code == 0, result.output
    assert "0 prédiction(s)" in result.output


def test_purge_removes_the_quota_counts_of_days_before_the_cutoff(database: Database) -> None:
    """A day's quota count outlives its use; the purge removes those older than the cutoff."""

    async def work(conn: psycopg.AsyncConnection[Any]) -> tuple[int, list[str]]:
        await conn.execute(
            "INSERT INTO usage_counters (counter, key, day, used) VALUES "
            "('predictions', 'key:purge', current_date - 400, 5), "
            "('predictions', 'key:purge', current_date - 40, 7), "
            "('predictions', 'key:purge', current_date - 1, 9)"
        )
        report = await purge(conn, datetime.now(UTC) - timedelta(days=30))
        cur = await conn.execute(
            "SELECT (current_date - day)::text FROM usage_counters WHERE key = 'key:purge'"
        )
        return report.usage_counts, [r[0] for r in await cur.fetchall()]

    deleted, kept = asyncio.run(_in_rolled_back_transaction(database, work))
    assert (deleted, kept) == (2, ["1"])
