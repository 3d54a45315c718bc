"""Two replicas of `attrition serve` on one PostgreSQL: what must be global is global.

Two real servers (2 processes each), on two ports of 127.0.0.1, given the test session's
PostgreSQL as an external ``DATABASE_URL``, started at the same time (one prepares the
database, the other waits for it). Checked across them: a key's daily quota is spent once,
an Idempotency-Key replayed (or raced) on the other replica gives the same prediction and
one record, a key revoked through one is refused by the other within the documented delay,
each replica's metrics carry its own label, and after mixed load on both `attrition audit
verify` finds one intact chain with every answered prediction sealed exactly once.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.cli import app as cli
from attrition.config import Settings
from attrition.db.engine import Database
from attrition.security.clients import KEY_CACHE_TTL_S as REVOCATION_DELAY_S
from attrition.security.store import create_key, set_daily_quota
from tests.helpers import Keys, auth
from tests.reliability.server import Server, start_server

QUOTA = 10
LOAD_SECONDS = 3.0


@pytest.fixture(scope="module")
def replicas(database: Database, settings: Settings, model_version: str) -> Iterator[list[Server]]:
    started = [
        start_server(
            database,
            settings,
            workers=2,
            env={"ATTRITION_REPLICA": name, "ATTRITION_DB__SEAL_INTERVAL_S": "0.2"},
            wait=False,
        )
        for name in ("replique-a", "replique-b")
    ]
    try:
        for server in started:
            server.wait_ready(120)
        yield started
    finally:
        for server in started:
            server.signal(signal.SIGTERM)
        for server in started:
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
            server.log.unlink(missing_ok=True)


def _predict(base: str, key: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/predictions",
        json=EXAMPLE_EMPLOYEE,
        headers={**auth(key), **headers},
        timeout=30,
    )


def test_a_daily_quota_is_spent_once_across_replicas(
    replicas: list[Server], database: Database, settings: Settings
) -> None:
    created = create_key(database, settings, name="quota-2-repliques", role="predicteur")
    set_daily_quota(database, created.key_id, QUOTA)
    a, b = (s.base_url for s in replicas)
    answers = [_predict((a, b)[n % 2], created.key) for n in range(QUOTA)]
    assert [r.status_code for r in answers] == [201] * QUOTA, answers[-1].text
    assert [int(r.headers["ratelimit-remaining"]) for r in answers] == list(
        range(QUOTA - 1, -1, -1)
    )
    for base in (a, b):  # spent: refused on both, one budget for the key
        refused = _predict(base, created.key)
        assert refused.status_code == 429, refused.text
        assert (
            f"Quota journalier de prédictions atteint pour cette clé ({QUOTA} par jour, "
            in (refused.json()["detail"])
        )
    with database.owner_engine().connect() as conn:
        recorded = conn.scalar(
            text(
                "SELECT count(*) FROM prediction_inputs i JOIN api_keys k ON k.id = i.api_key_id "
                "WHERE k.key_id = :key_id"
            ),
            {"key_id": created.key_id},
        )
    assert recorded == QUOTA


def test_an_idempotency_key_is_one_prediction_on_any_replica(
    replicas: list[Server], database: Database, keys: Keys
) -> None:
    a, b = (s.base_url for s in replicas)
    first_key = f"repliques-{uuid.uuid4()}"
    first = _predict(a, keys.predicteur, **{"Idempotency-Key": first_key})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    again = _predict(b, keys.predicteur, **{"Idempotency-Key": first_key})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # The same key sent to both replicas at the same instant: one prediction, twice answered.
    raced_key = f"repliques-course-{uuid.uuid4()}"
    barrier = threading.Barrier(2)
    raced: dict[str, httpx.Response] = {}

    def send(base: str) -> None:
        barrier.wait(10)
        raced[base] = _predict(base, keys.predicteur, **{"Idempotency-Key": raced_key})

    threads = [threading.Thread(target=send, args=(base,)) for base in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [raced[base].status_code for base in (a, b)] == [201, 201]
    assert raced[a].json()["prediction_id"] == raced[b].json()["prediction_id"]
    with database.owner_engine().connect() as conn:
        counts = [
            conn.scalar(
                text("SELECT count(*) FROM prediction_inputs WHERE idempotency_key = :k"), {"k": k}
            )
            for k in (first_key, raced_key)
        ]
    assert counts == [1, 1]


def test_a_key_revoked_on_one_replica_is_refused_by_the_other(
    replicas: list[Server], database: Database, settings: Settings, keys: Keys
) -> None:
    created = create_key(database, settings, name="revoquee-2-repliques", role="predicteur")
    a, b = (s.base_url for s in replicas)
    # Both replicas have verified the key (and may hold it in their cache).
    for base in (a, b):
        for _ in range(4):  # reach both processes of each replica
            assert _predict(base, created.key).status_code == 201
    revoked = httpx.delete(f"{a}/v1/keys/{created.key_id}", headers=auth(keys.admin), timeout=10)
    assert revoked.status_code == 200, revoked.text
    revoked_at = time.monotonic()
    first_refusal = None
    # Until the documented delay has passed, each answer is either still a success (a process
    # that verified the key moments ago) or the refusal; never anything else.
    while time.monotonic() - revoked_at < REVOCATION_DELAY_S + 0.5:
        r = _predict(b, created.key)
        assert r.status_code in (201, 401), r.text
        if r.status_code == 401:
            assert r.json()["detail"] == "Clé API révoquée."
            first_refusal = first_refusal or time.monotonic() - revoked_at
        time.sleep(0.1)
    assert first_refusal is not None, "the other replica still accepts the revoked key"
    # Past the delay: refused everywhere, every time (every process of each replica).
    codes = {_predict(base, created.key).status_code for base in (a, b) for _ in range(8)}
    assert codes == {401}


def test_each_replica_labels_its_metrics(replicas: list[Server]) -> None:
    texts = [httpx.get(f"{s.base_url}/metrics", timeout=10).text for s in replicas]
    for own, other, body in (
        ("replique-a", "replique-b", texts[0]),
        ("replique-b", "replique-a", texts[1]),
    ):
        assert f'attrition_model_ready{{replica="{own}"}} 1.0' in body
        assert f'replica="{other}"' not in body
        samples = [line for line in body.splitlines() if line and not line.startswith("#")]
        assert all(f'{{replica="{own}"' in line for line in samples)


class _Load:
    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def answer(self, r: httpx.Response, what: str) -> None:
        with self.lock:
            if r.status_code != 201:
                self.failures.append(f"{what}: {r.status_code} {r.text[:200]}")
            elif "predictions" in r.json():
                self.ids.update(int(p["prediction_id"]) for p in r.json()["predictions"])
            else:
                self.ids.add(int(r.json()["prediction_id"]))


def _client(bases: list[str], key: str, stop: threading.Event, load: _Load, index: int) -> None:
    n = 0
    used: list[str] = []
    while not stop.is_set():
        n += 1
        base = bases[(n + index) % 2]  # each client alternates between the replicas
        if index == 0 and n % 5 == 0:
            body = {"employes": [{**EXAMPLE_EMPLOYEE, "age": 30 + i % 20} for i in range(40)]}
            r = httpx.post(f"{base}/v1/predictions/batch", json=body, headers=auth(key), timeout=60)
            load.answer(r, "lot")
            continue
        headers: dict[str, str] = {}
        if index == 1:  # keyed; every third one replays the previous key, on the other replica
            if used and n % 3 == 0:
                headers["Idempotency-Key"] = used[-1]
            else:
                used.append(f"charge-{uuid.uuid4()}")
                headers["Idempotency-Key"] = used[-1]
        load.answer(_predict(base, key, **headers), "unitaire")


def test_one_intact_chain_after_mixed_load_on_both_replicas(
    replicas: list[Server], database: Database, keys: Keys, cli_env: CliRunner
) -> None:
    bases = [s.base_url for s in replicas]
    load, stop = _Load(), threading.Event()
    threads = [
        threading.Thread(target=_client, args=(bases, key, stop, load, i), daemon=True)
        for i, key in enumerate((keys.predicteur, keys.predicteur, keys.autre_predicteur))
    ]
    for t in threads:
        t.start()
    time.sleep(LOAD_SECONDS)
    stop.set()
    for t in threads:
        t.join(60)
    assert not load.failures, load.failures[:5]
    assert len(load.ids) > 40, len(load.ids)
    sealed = cli_env.invoke(cli, ["audit", "seal"])
    assert sealed.exit_code == 0, sealed.output
    with database.owner_engine().connect() as conn:
        counts = conn.execute(
            text(
                "SELECT p.id, count(a.prediction_id) FROM predictions p "
                "LEFT JOIN audit_chain a ON a.prediction_id = p.id "
                "WHERE p.id = ANY(:ids) GROUP BY p.id"
            ),
            {"ids": sorted(load.ids)},
        ).all()
    assert len(counts) == len(load.ids)
    assert [pid for pid, n in counts if n != 1] == []
    verified = cli_env.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "Chaîne intacte" in verified.output
    assert " 0 pas encore scellée" in verified.output
