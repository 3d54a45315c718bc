"""Prometheus metrics, their protection in production, and the JSON access log."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from attrition.api.app import create_app
from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.config import AppEnv, Settings
from attrition.db.engine import Database
from attrition.logs import JsonFormatter
from attrition.monitoring.metrics import Metrics, route_label
from tests.helpers import Keys, auth


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_predictions_model_and_pool(
    client: TestClient, keys: Keys, model_version: str
) -> None:
    before = client.get("/metrics").text
    created = client.post("/v1/predictions", json=EXAMPLE_EMPLOYEE, headers=auth(keys.predicteur))
    assert created.status_code == 201
    label, risk = created.json()["prediction"], created.json()["niveau_risque"]
    pid = created.json()["prediction_id"]
    assert client.get(f"/v1/predictions/{pid}", headers=auth(keys.predicteur)).is_success
    client.get("/v1/nowhere")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = r.text
    key = {"method": "POST", "route": "/v1/predictions", "status": "201"}
    assert sample(after, "attrition_http_requests_total", **key) == (
        sample(before, "attrition_http_requests_total", **key) + 1
    )
    assert sample(after, "attrition_http_request_duration_seconds_count", **key) == sample(
        after, "attrition_http_requests_total", **key
    )
    # Route templates, never raw paths (bounded label values, no identifiers).
    assert re.search(r'route="/v1/predictions/\{prediction_id(:int)?\}"', after)
    assert f'route="/v1/predictions/{pid}"' not in after
    assert 'route="inconnue",status="404"' in after
    counted = {"label": label, "risk_level": risk, "source": "api"}
    assert sample(after, "attrition_predictions_total", **counted) == (
        sample(before, "attrition_predictions_total", **counted) + 1
    )
    assert sample(after, "attrition_prediction_probability_count") >= 1
    assert sample(after, "attrition_model_info", version=model_version) == 1
    assert sample(after, "attrition_model_ready") == 1
    assert sample(after, "attrition_db_pool_max") == 10
    assert sample(after, "attrition_db_pool_size") >= 1
    assert re.search(r'^attrition_db_requests_num\{replica="[^"]+"\} \d', after, re.MULTILINE)


def test_access_log_line_has_ids_but_no_secret(
    client: TestClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="attrition.access"):
        r = client.get("/v1/employees/1", headers={**auth(keys.auditeur), "X-Request-ID": "req-42"})
    records = [r for r in caplog.records if r.name == "attrition.access"]
    assert records, "no access log line"
    record = records[-1]
    line = json.loads(JsonFormatter().format(record))
    # The server's own id, and the client's kept apart.
    assert line["request_id"] == r.headers["x-server-request-id"] != "req-42"
    assert line["client_request_id"] == "req-42"
    assert line["route"] == "/v1/employees/{id_employee}"
    assert line["status"] == 200 and line["method"] == "GET" and line["duration_ms"] > 0
    assert line["client"] == keys.auditeur.split("_")[1]
    assert "ftr_" not in json.dumps(line) and "/v1/employees/1" not in json.dumps(line)


def test_route_labels_and_standalone_metrics() -> None:
    assert route_label("/v1/model", "/v1/model") == "/v1/model"
    assert route_label("inconnue", "/static/app.css") == "/static"
    assert route_label("inconnue", "/static-docs/redoc.standalone.js") == "/static-docs"
    assert route_label("inconnue", "/staticfoo") == "inconnue"
    metrics = Metrics()  # not bound to an app: no model, empty pool statistics
    metrics.observe_request("GET", "/health", 200, 0.001)
    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'attrition_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert "attrition_model_ready 0.0" in text and "attrition_db_pool_size 0.0" in text


@pytest.fixture(scope="module")
def prod_client(database: Database, settings: Settings, model_version: str) -> Iterator[TestClient]:
    prod = settings.model_copy(update={"app_env": AppEnv.PROD})
    with TestClient(create_app(prod, database=database), raise_server_exceptions=False) as c:
        yield c


def test_metrics_need_an_admin_or_auditeur_key_in_prod(prod_client: TestClient, keys: Keys) -> None:
    r = prod_client.get("/metrics")
    assert r.status_code == 401 and r.json()["detail"].startswith("Clé API manquante")
    r = prod_client.get("/metrics", headers=auth(keys.predicteur))
    assert r.status_code == 403 and "métriques" in r.json()["detail"]
    for key in (keys.auditeur, keys.admin):
        assert prod_client.get("/metrics", headers=auth(key)).status_code == 200


def test_session_cookie_is_secure_in_prod(prod_client: TestClient) -> None:
    page = prod_client.get("/app/connexion")  # the CSRF token opens the session
    cookie = page.headers["set-cookie"].lower()
    assert "attrition_session=" in cookie and "; secure" in cookie
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "strict-transport-security" in page.headers


def test_every_sample_carries_the_replica_label() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    metrics = Metrics(replica='hôte-"1"')
    metrics.observe_request("GET", "/health", 200, 0.001)
    text = metrics.render()[0].decode()
    assert 'attrition_http_requests_total{replica="hôte-\\"1\\"",method="GET"' in text
    assert 'attrition_model_ready{replica="hôte-\\"1\\""} 0.0' in text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert len(samples) > 20
    assert {s.labels.get("replica") for s in samples} == {'hôte-"1"'}
    # Without a replica name (a standalone registry), the text is prometheus_client's own.
    assert "replica=" not in Metrics().render()[0].decode()


def test_a_batch_counts_each_prediction_once_by_decision_and_level() -> None:
    from types import SimpleNamespace

    metrics = Metrics()
    kinds = (
        [("depart", "eleve", 0.8)] * 3 + [("reste", "moyen", 0.2)] * 2 + [("reste", "faible", 0.05)]
    )
    metrics.observe_predictions(
        [SimpleNamespace(label=a, risk_level=b, probability=p) for a, b, p in kinds], "batch"
    )
    metrics.observe_predictions(
        [SimpleNamespace(label="depart", risk_level="eleve", probability=0.9)], "api"
    )
    text = metrics.render()[0].decode()
    name = "attrition_predictions_total"
    assert sample(text, name, label="depart", risk_level="eleve", source="batch") == 3.0
    assert sample(text, name, label="reste", risk_level="moyen", source="batch") == 2.0
    assert sample(text, name, label="reste", risk_level="faible", source="batch") == 1.0
    assert sample(text, name, label="depart", risk_level="eleve", source="api") == 1.0
    assert sample(text, "attrition_prediction_probability_count") == 7.0
    assert sample(text, "attrition_prediction_probability_bucket", le="0.1") == 1.0


def _without_created(text: str) -> list[str]:
    # Counters and histograms of a standalone registry expose their creation time.
    return [line for line in text.splitlines() if "_created" not in line]


def test_one_loop_turn_of_requests_reaches_the_shared_values_once_at_its_end() -> None:
    import asyncio

    metrics = Metrics()
    child = metrics.requests.labels("POST", "/v1/predictions", "201")
    writes: list[float] = []
    value_inc = child._value.inc
    child._value.inc = lambda amount: (writes.append(amount), value_inc(amount))  # type: ignore[method-assign]

    async def turn() -> tuple[float, float]:
        for _ in range(3):
            metrics.observe_request("POST", "/v1/predictions", 201, 0.002)
        during = child._value.get()
        await asyncio.sleep(0)  # the loop's next turn
        return during, child._value.get()

    during, after = asyncio.run(turn())
    # prometheus_client's values (a lock, a pid check and a write to the shared file in
    # multiprocess mode) are written once per turn, for all the requests it answered.
    assert (during, after) == (0.0, 3.0)
    assert writes == [3.0]


def test_a_scrape_in_the_same_turn_sees_every_request_counted() -> None:
    import asyncio

    metrics = Metrics()

    async def turn() -> str:
        metrics.observe_request("GET", "/health", 200, 0.001)
        return metrics.render()[0].decode()

    text = asyncio.run(turn())
    assert sample(text, "attrition_http_requests_total", method="GET", status="200") == 1.0


def test_tallied_counts_and_buckets_equal_prometheus_clients_own() -> None:
    import asyncio
    from types import SimpleNamespace

    from attrition.monitoring.metrics import LATENCY_BUCKETS, PROBABILITY_BUCKETS

    # Every bound exactly (it belongs to its own bucket), between bounds, past the last, and
    # a NaN (added to the sum, counted in no bucket, as prometheus_client does).
    latencies = [*LATENCY_BUCKETS, *(b * 0.7 for b in LATENCY_BUCKETS), 30.0, 0.0, float("nan")]
    probabilities = [*PROBABILITY_BUCKETS, *(b * 0.9 for b in PROBABILITY_BUCKETS), 0.0]
    outcomes = [
        SimpleNamespace(label="reste", risk_level="faible", probability=p) for p in probabilities
    ]

    tallied = Metrics()

    async def turn() -> None:
        for i, seconds in enumerate(latencies):
            tallied.observe_request("POST", "/v1/predictions", 201 if i % 3 else 422, seconds)
        tallied.observe_predictions(outcomes, "batch")
        tallied.observe_predictions(outcomes[:1], "api")

    asyncio.run(turn())

    direct = Metrics()
    for i, seconds in enumerate(latencies):
        labels = ("POST", "/v1/predictions", "201" if i % 3 else "422")
        direct.requests.labels(*labels).inc()
        direct.latency.labels(*labels).observe(seconds)
    for outcome in [*outcomes, outcomes[0]]:
        direct.probability.observe(outcome.probability)
    direct.predictions.labels("reste", "faible", "batch").inc(len(outcomes))
    direct.predictions.labels("reste", "faible", "api").inc()

    assert _without_created(tallied.render()[0].decode()) == _without_created(
        direct.render()[0].decode()
    )


def test_the_access_line_of_a_request_is_deferred_not_formatted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the service's own logging, a request's access line makes no log record on the
    request path: its parts are kept, and formatted with the others when they are written."""
    import io
    import sys

    from attrition.config import Settings
    from attrition.logs import configure_logging

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(Settings(log_level="INFO"))
    made: list[str] = []
    make = logging.Logger.makeRecord

    def counting(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(self.name)
        return make(self, *args, **kwargs)

    monkeypatch.setattr(logging.Logger, "makeRecord", counting)
    try:
        metrics = Metrics()
        scope = {"path": "/v1/predictions", "state": {"request_id": "abc123"}}
        metrics.observe_request("POST", "/v1/predictions", 201, 0.0042, scope)
        assert made == []
        for handler in logging.getLogger().handlers:
            handler.flush()
        (line,) = stream.getvalue().splitlines()
        assert line.endswith(
            "attrition.access: POST /v1/predictions 201 4.2 ms (requête abc123, clé -)"
        )
    finally:
        for handler in logging.getLogger().handlers:
            handler.close()
        logging.getLogger().handlers.clear()
