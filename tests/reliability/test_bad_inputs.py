"""The catalogue of bad inputs (bad_inputs.yaml): refused, named, not scored, traced once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import text

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.db.engine import Database
from tests.helpers import Keys, auth
from tests.reliability.figures import Figures

CATALOGUE: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "bad_inputs.yaml").read_text(encoding="utf-8")
)
EXAMPLE_TEXT = json.dumps(EXAMPLE_EMPLOYEE)
TWO_MB = 2 * 1024 * 1024


def _chunks() -> Iterator[bytes]:
    yield b'{"age": "'
    for _ in range(TWO_MB // 65536):
        yield b"x" * 65536
    yield b'"}'


#: Bodies and headers too big or too odd for YAML: name -> request parts (and expected field).
BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "json_tronque": lambda: {"content": EXAMPLE_TEXT[:100].encode()},
    "octets_invalides": lambda: {"content": b'{"age": "\xff\xfe"}'},
    "nul_brut": lambda: {"content": b'{"age": 41\x00}'},
    "cle_en_double": lambda: {"content": (EXAMPLE_TEXT[:-1] + ', "age": 99}').encode()},
    "poste_long": lambda: {"json": {**EXAMPLE_EMPLOYEE, "poste": "A" * 10_000}},
    "champ_long": lambda: {"json": {**EXAMPLE_EMPLOYEE, "x" * 1000: 1}, "champ": "x" * 1000},
    # "\ud800" is a lone UTF-16 surrogate: a valid JSON escape, but not text.
    "surrogat_isole": lambda: {"content": (EXAMPLE_TEXT[:-1] + ', "\\ud800champ": 1}').encode()},
    "lot_1001": lambda: {"json": {"employes": [EXAMPLE_EMPLOYEE] * 1001}},
    "lot_ligne_fausse": lambda: {
        "json": {"employes": [EXAMPLE_EMPLOYEE, {**EXAMPLE_EMPLOYEE, "age": 99}]}
    },
    "lot_champ_inconnu": lambda: {"json": {"employes": [EXAMPLE_EMPLOYEE], "priorite": "haute"}},
    "deux_mo": lambda: {"content": b"{" + b" " * TWO_MB + b"}"},
    "deux_mo_par_morceaux": lambda: {"content": _chunks()},
    "cle_idempotence_latin1": lambda: {
        "json": EXAMPLE_EMPLOYEE,
        "headers": {"Idempotency-Key": "ma-clé".encode("latin-1")},
    },
    "cle_idempotence_longue": lambda: {
        "json": EXAMPLE_EMPLOYEE,
        "headers": {"Idempotency-Key": "k" * 300},
    },
}


def request_parts(entry: dict[str, Any]) -> dict[str, Any]:
    """method, url, params, headers, content and the expected field of one catalogue entry."""
    parts: dict[str, Any] = {
        "method": entry.get("methode", "POST"),
        "url": entry.get("route", "/v1/predictions"),
        "params": entry.get("requete"),
        "headers": dict(entry.get("en_tetes", {})),
        "champ": entry["champ"],
    }
    body: Any = None
    if "modifier" in entry:
        body = json.dumps({**EXAMPLE_EMPLOYEE, **entry["modifier"]}).encode()
    elif "retirer" in entry:
        body = json.dumps(
            {k: v for k, v in EXAMPLE_EMPLOYEE.items() if k not in entry["retirer"]}
        ).encode()
    elif "json" in entry:
        body = json.dumps(entry["json"]).encode()
    elif "jeton" in entry:
        ((field, token),) = entry["jeton"].items()
        text_ = json.dumps({**EXAMPLE_EMPLOYEE, field: "@@"}).replace('"@@"', str(token))
        body = text_.encode()
    elif "brut" in entry:
        body = entry["brut"].encode()
    elif "genere" in entry:
        built = BUILDERS[entry["genere"]]()
        parts["champ"] = built.get("champ", parts["champ"])
        parts["headers"].update(built.get("headers", {}))
        body = built["content"] if "content" in built else json.dumps(built["json"]).encode()
    parts["content"] = body
    content_type = entry.get("content_type", "application/json")
    if body is not None and content_type:
        parts["headers"]["Content-Type"] = content_type
    return parts


def _rejections(database: Database, request_id: str) -> list[int]:
    """The statuses recorded in rejected_requests under this request id."""
    with database.owner_engine().connect() as c:
        return list(
            c.scalars(
                text("SELECT status FROM rejected_requests WHERE client_request_id = :r"),
                {"r": request_id},
            )
        )


def _inputs(database: Database, request_id: str) -> int:
    with database.owner_engine().connect() as c:
        return int(
            c.scalar(
                text("SELECT count(*) FROM prediction_inputs WHERE client_request_id = :r"),
                {"r": request_id},
            )
            or 0
        )


def test_the_catalogue_is_well_formed() -> None:
    names = [e["nom"] for e in CATALOGUE]
    assert len(names) == len(set(names)) >= 100
    body_keys = {"modifier", "retirer", "json", "jeton", "brut", "genere"}
    for entry in CATALOGUE:
        assert len(body_keys & entry.keys()) <= 1, entry["nom"]
        assert entry["statut"] in (413, 415, 422), entry["nom"]
        assert entry.get("genere") in (None, *BUILDERS), entry["nom"]


@pytest.mark.parametrize("entry", CATALOGUE, ids=[e["nom"] for e in CATALOGUE])
def test_bad_input_is_refused_named_and_traced(
    entry: dict[str, Any],
    client: TestClient,
    keys: Keys,
    database: Database,
    figures: Figures,
) -> None:
    parts = request_parts(entry)
    request_id = f"mauvaise-entree-{uuid.uuid4().hex[:16]}"
    headers = {**auth(keys.predicteur), **parts["headers"], "X-Request-ID": request_id}
    r = client.request(
        parts["method"],
        parts["url"],
        params=parts["params"],
        content=parts["content"],
        headers=headers,
    )
    figures.add("entrees_invalides", "cas")
    assert r.status_code == entry["statut"], r.text[:500]
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-request-id"] == request_id
    problem = r.json()
    assert (
        problem["status"] == entry["statut"]
        and problem["request_id"] == r.headers["x-server-request-id"]
    )
    messages = {e["champ"]: e["message"] for e in problem["errors"]}
    assert parts["champ"] in messages, messages
    assert entry["message"] in messages[parts["champ"]], messages
    figures.add("entrees_invalides", "refusees_et_nommees")
    assert _inputs(database, request_id) == 0
    assert _rejections(database, request_id) == [entry["statut"]]
    figures.add("entrees_invalides", "tracees_une_fois")
