"""The audit hash chain: sealing, verification, and detection of an edited or deleted row."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.cli import app as cli
from attrition.db import chain
from attrition.db.engine import Database, libpq_conninfo
from tests.helpers import Keys, auth


async def _run(db: Database, work: Any) -> Any:
    async with await psycopg.AsyncConnection.connect(libpq_conninfo(db.owner_url)) as conn:
        return await work(conn)


def test_seal_verify_and_detect_tampering(
    client: TestClient, keys: Keys, database: Database, cli_env: CliRunner
) -> None:
    for _ in range(3):
        assert (
            client.post(
                "/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur)
            ).status_code
            == 201
        )
    sealed = asyncio.run(_run(database, lambda c: chain.seal(c, lag_seconds=0)))
    assert sealed >= 3
    assert asyncio.run(_run(database, lambda c: chain.seal(c, lag_seconds=0))) == 0
    ok = asyncio.run(_run(database, chain.verify))
    assert ok.ok and ok.checked >= 3
    runner = cli_env
    result = runner.invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0 and "Chaîne intacte" in result.output

    with database.owner_engine().connect() as c:
        target = c.scalar(text("SELECT max(prediction_id) - 1 FROM audit_chain"))
    engine = database.owner_engine()
    with engine.begin() as c:
        genuine = c.scalar(text("SELECT probability FROM predictions WHERE id = :i"), {"i": target})
        c.execute(text("SET LOCAL attrition.allow_purge = 'on'"))
        c.execute(text("UPDATE predictions SET probability = 0.001 WHERE id = :i"), {"i": target})
    try:
        broken = asyncio.run(_run(database, chain.verify))
        assert broken.broken_at == target and broken.reason == "enregistrement modifié"
        result = runner.invoke(cli, ["audit", "verify"])
        assert result.exit_code == 2
        assert f"prédiction {target}" in result.output
    finally:
        with engine.begin() as c:
            c.execute(text("SET LOCAL attrition.allow_purge = 'on'"))
            c.execute(
                text("UPDATE predictions SET probability = :p WHERE id = :i"),
                {"p": genuine, "i": target},
            )
    assert asyncio.run(_run(database, chain.verify)).ok


def test_sealing_spans_several_slices(client: TestClient, keys: Keys, database: Database) -> None:
    """More records than one slice: hashed across yields to the loop, the chain still holds."""
    size = 2 * chain.SLICE + 50
    response = client.post(
        "/v1/predictions/batch",
        json={"employes": [EXAMPLE_EMPLOYEE] * size},
        headers=auth(keys.predicteur),
    )
    assert response.status_code == 201
    sealed = asyncio.run(_run(database, lambda c: chain.seal(c, lag_seconds=0)))
    assert sealed >= size
    result = asyncio.run(_run(database, chain.verify))
    assert result.ok and result.unsealed == 0 and result.checked >= size
