"""Abuse resistance in the application (issue 16): no lockout, bounded writes and answers.

Each test here failed on the code before the fix (see the issue's numbered observations).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.app import create_app
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import Settings
from attrition.db.engine import Database
from attrition.security.keys import _checksum, generate_key
from attrition.security.store import create_key
from tests.helpers import Keys, auth


@contextmanager
def _app(
    settings: Settings,
    database: Database,
    client: tuple[str, int] = ("203.0.113.7", 40000),
    **api: object,
) -> Iterator[TestClient]:
    limited = settings.model_copy(update={"api": settings.api.model_copy(update=api)})
    app = create_app(limited, database=database)
    with TestClient(app, raise_server_exceptions=False, client=client) as test_client:
        yield test_client


def _rows(database: Database, request_ids: list[str]) -> list[dict[str, object]]:
    with database.owner_engine().connect() as c:
        return [
            dict(r._mapping)
            for r in c.execute(
                text(
                    "SELECT client_request_id AS request_id, status, errors, payload_excerpt, "
                    "octet_length(errors::text) AS errors_bytes FROM rejected_requests "
                    "WHERE client_request_id = ANY(:ids)"
                ),
                {"ids": request_ids},
            )
        ]


# ---- 1. Failed authentications never lock out a valid key ---------------------------------


def test_bad_keys_from_an_address_never_lock_out_a_valid_key(
    settings: Settings, database: Database, keys: Keys, model_version: str
) -> None:
    with _app(settings, database, auth_failures_per_minute=20) as client:
        codes = [
            client.get("/v1/model", headers=auth(generate_key().full)).status_code
            for _ in range(25)
        ]
        assert codes[:20] == [401] * 20
        assert codes[20:] == [429] * 5  # the failures are throttled...
        # ...but a valid key from the same address (the same proxy) is governed by its own
        # quota only.
        assert client.get("/v1/model", headers=auth(keys.auditeur)).status_code == 200
        assert client.get("/v1/model", headers=auth(keys.predicteur)).status_code == 200
        still = client.get("/v1/model", headers=auth(generate_key().full))
        assert still.status_code == 429
        assert int(still.headers["retry-after"]) >= 1
        assert "échecs d'authentification" in still.json()["detail"]


def test_failures_on_one_key_id_are_throttled_from_any_address(
    settings: Settings, database: Database, keys: Keys, model_version: str
) -> None:
    key_id = keys.auditeur.split("_")[1]
    body = f"ftr_{key_id}_{'A' * 32}"
    guess = body + _checksum(body)  # the real key id, a valid checksum, a wrong secret
    with _app(
        settings,
        database,
        client=("10.0.0.1", 40000),
        auth_failures_per_minute=3,
        trusted_proxies=["10.0.0.0/8"],
    ) as client:
        codes = [
            client.get(
                "/v1/model", headers={"X-Forwarded-For": f"198.51.100.{n}", **auth(guess)}
            ).status_code
            for n in range(5)
        ]
        assert codes == [401, 401, 401, 429, 429]  # five addresses, one key id
        assert client.get("/v1/model", headers=auth(keys.auditeur)).status_code == 200


def test_trusted_proxy_forwarded_for_separates_the_clients_behind_it(
    settings: Settings, database: Database, keys: Keys, model_version: str
) -> None:
    # Behind a trusted proxy, each client is its X-Forwarded-For address: the one sending
    # bad keys is throttled, the other is not.
    with _app(
        settings,
        database,
        client=("10.1.2.3", 40000),
        auth_failures_per_minute=3,
        trusted_proxies=["10.0.0.0/8"],
    ) as client:
        bad = {"X-Forwarded-For": "203.0.113.50"}
        codes = [
            client.get("/v1/model", headers={**bad, **auth(generate_key().full)}).status_code
            for _ in range(5)
        ]
        assert codes == [401, 401, 401, 429, 429]
        other = {"X-Forwarded-For": "203.0.113.51"}
        assert client.get("/v1/model", headers={**other, **auth("x")}).status_code == 401


def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    settings: Settings, database: Database, model_version: str
) -> None:
    with _app(
        settings,
        database,
        client=("203.0.113.9", 40000),
        auth_failures_per_minute=3,
        trusted_proxies=["10.0.0.0/8"],
    ) as client:
        codes = [
            client.get(
                "/v1/model", headers={"X-Forwarded-For": f"198.51.100.{n}", **auth("x")}
            ).status_code
            for n in range(5)
        ]
        assert codes == [401, 401, 401, 429, 429]  # a fresh X-Forwarded-For buys nothing


# ---- 3. Unauthenticated refusals: key first, bounded writes --------------------------------


def test_the_key_is_checked_before_the_body_is_parsed(
    settings: Settings, database: Database, model_version: str
) -> None:
    with _app(settings, database) as client:
        r = client.post(
            "/v1/predictions",
            content=b'{"age": 3',  # malformed JSON, no key
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 401, r.text


def test_refusals_without_a_key_are_written_within_a_budget(
    settings: Settings, database: Database, model_version: str
) -> None:
    with _app(
        settings, database, rejections_recorded_per_minute=5, auth_failures_per_minute=1000
    ) as client:
        ids = [f"flood-{uuid.uuid4().hex[:12]}" for _ in range(30)]
        for request_id in ids:
            r = client.post(
                "/v1/predictions",
                content=b'{"age": 3',
                headers={"Content-Type": "application/json", "X-Request-ID": request_id},
            )
            assert r.status_code == 401
        assert len(_rows(database, ids)) == 5
        metrics = client.get("/metrics").text
        assert (
            f'attrition_rejections_unrecorded_total{{replica="{settings.replica}",status="401"}} 25.0'
            in metrics
        )


# ---- 4. Error amplification ---------------------------------------------------------------


def test_a_batch_of_invalid_rows_gets_a_bounded_answer_and_record(
    settings: Settings, database: Database, keys: Keys, model_version: str
) -> None:
    with _app(settings, database) as client:
        request_id = f"amplif-{uuid.uuid4().hex[:12]}"
        body = json.dumps({"employes": [{"age": "x"}] * 1000}).encode()
        assert len(body) < 20_000
        r = client.post(
            "/v1/predictions/batch",
            content=body,
            headers={
                **auth(keys.predicteur),
                "Content-Type": "application/json",
                "X-Request-ID": request_id,
            },
        )
        assert r.status_code == 422
        assert len(r.content) < 10_000, len(r.content)
        problem = r.json()
        assert len(problem["errors"]) == 20
        assert problem["nombre_erreurs"] > 1000
        assert f"(et {problem['nombre_erreurs'] - 1} autre(s) erreur(s))" in problem["detail"]
        (row,) = _rows(database, [request_id])
        assert row["errors_bytes"] < 5_000
        assert len(row["errors"]) == 21
        assert "erreurs au total" in row["errors"][-1]["message"]
        assert len(row["payload_excerpt"]) <= 2048


# ---- 5. Quotas count predictions ----------------------------------------------------------


def test_quota_counts_predictions_not_requests(
    settings: Settings, database: Database, keys: Keys, model_version: str
) -> None:
    with _app(settings, database, max_batch_size=5, predictions_per_minute=5) as client:
        headers = auth(keys.predicteur)
        first = client.post(
            "/v1/predictions/batch", json={"employes": [EXAMPLE_EMPLOYEE] * 4}, headers=headers
        )
        assert first.status_code == 201
        assert first.headers["ratelimit-limit"] == "5"
        assert first.headers["ratelimit-remaining"] == "1"
        assert first.headers["ratelimit-policy"].startswith("5;w=60")
        second = client.post(
            "/v1/predictions/batch", json={"employes": [EXAMPLE_EMPLOYEE] * 2}, headers=headers
        )
        assert second.status_code == 429, second.text
        assert int(second.headers["retry-after"]) >= 1
        assert second.headers["ratelimit-remaining"] == "1"
        assert "Quota de prédictions par minute" in second.json()["detail"]
        # The one prediction left still passes; then the quota is spent.
        assert (
            client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers).status_code
            == 201
        )
        assert (
            client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers).status_code
            == 429
        )


def test_a_replay_does_not_count_in_the_quota(
    settings: Settings, database: Database, keys: Keys, model_version: str
) -> None:
    with _app(settings, database, max_batch_size=2, predictions_per_minute=2) as client:
        headers = {**auth(keys.predicteur), "Idempotency-Key": f"quota-{uuid.uuid4().hex}"}
        first = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
        assert first.status_code == 201 and first.headers["ratelimit-remaining"] == "1"
        again = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers)
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        other = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
        assert other.status_code == 201 and other.headers["ratelimit-remaining"] == "0"


def test_daily_quota_per_key_set_by_the_admin(
    settings: Settings, database: Database, model_version: str
) -> None:
    from attrition.security.store import set_daily_quota

    created = create_key(database, settings, name="quota-jour", role="predicteur")
    set_daily_quota(database, created.key_id, 3)
    with _app(settings, database) as client:
        headers = auth(created.key)
        ok = client.post(
            "/v1/predictions/batch", json={"employes": [EXAMPLE_EMPLOYEE] * 2}, headers=headers
        )
        assert ok.status_code == 201
        assert ok.headers["ratelimit-limit"] == "3" and ok.headers["ratelimit-remaining"] == "1"
        refused = client.post(
            "/v1/predictions/batch", json={"employes": [EXAMPLE_EMPLOYEE] * 2}, headers=headers
        )
        assert refused.status_code == 429
        assert "Quota journalier" in refused.json()["detail"]
        assert 0 < int(refused.headers["retry-after"]) <= 86_400
        assert refused.headers["ratelimit-remaining"] == "1"
        assert (
            client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=headers).status_code
            == 201
        )


# ---- 7. Smaller ---------------------------------------------------------------------------


def test_nul_in_a_body_is_refused_and_traced_escaped(
    settings: Settings, database: Database, keys: Keys, model_version: str
) -> None:
    with _app(settings, database) as client:
        request_id = f"nul-{uuid.uuid4().hex[:12]}"
        r = client.post(
            "/v1/predictions",
            # Every field right, plus {"\u0000": 1}: PostgreSQL refuses NUL in JSONB.
            content=json.dumps({**EXAMPLE_EMPLOYEE, "\x00": 1}).encode(),
            headers={
                **auth(keys.predicteur),
                "Content-Type": "application/json",
                "X-Request-ID": request_id,
            },
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["champ"] == "\x00"
        (row,) = _rows(database, [request_id])
        assert row["errors"][0]["champ"] == "\\u0000", row["errors"]
        assert "\\u0000" in row["payload_excerpt"]


def test_deeply_nested_json_is_a_traced_422_naming_the_body(
    settings: Settings, database: Database, keys: Keys, model_version: str
) -> None:
    with _app(settings, database) as client:
        request_id = f"deep-{uuid.uuid4().hex[:12]}"
        r = client.post(
            "/v1/predictions",
            content=b"[" * 10_000 + b"]" * 10_000,
            headers={
                **auth(keys.predicteur),
                "Content-Type": "application/json",
                "X-Request-ID": request_id,
            },
        )
        assert r.status_code == 422, r.text
        errors = r.json()["errors"]
        assert errors and errors[0]["champ"] == "corps"
        assert "imbriqu" in errors[0]["message"]
        assert [row["status"] for row in _rows(database, [request_id])] == [422]


def test_employees_follow_the_same_cursor_as_predictions(client: TestClient, keys: Keys) -> None:
    headers = auth(keys.auditeur)
    first = client.get("/v1/employees", params={"limite": 2}, headers=headers).json()
    cursor = first["curseur_suivant"]
    assert cursor
    second = client.get(
        "/v1/employees", params={"limite": 2, "curseur": cursor}, headers=headers
    ).json()
    ids = [e["id_employee"] for e in first["employes"] + second["employes"]]
    assert len(set(ids)) == 4 and ids == sorted(ids)
    bad = client.get("/v1/employees", params={"curseur": "pas-un-curseur"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["champ"] == "curseur"


def test_unknown_query_parameters_are_refused(client: TestClient, keys: Keys) -> None:
    headers = auth(keys.auditeur)
    for path in ("/v1/employees", "/v1/predictions", "/v1/model"):
        r = client.get(path, params={"apres": "3"}, headers=headers)
        assert r.status_code == 422, (path, r.status_code)
        assert r.json()["errors"][0]["champ"] == "apres"
        assert "inconnu" in r.json()["errors"][0]["message"]
