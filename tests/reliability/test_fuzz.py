"""API fuzzing: Schemathesis against the app's own OpenAPI document, every phase, every check.

Valid and invalid requests are generated from the schema (examples, coverage and fuzzing
phases) and sent in process to a dedicated app instance, authenticated with a dedicated admin
key through the schema's security schemes. Every response is checked: no 5xx, a documented
status code, the documented content type and body schema, invalid data refused, valid data
accepted. The seed and the checks are in ``schemathesis.toml``; ATTRITION_FUZZ_EXAMPLES bounds
the examples per operation (8 in `make test`, 200 in `make fuzz`).

A few rules cannot be written in JSON Schema (an employee's seniorities must fit in their
career, a period must not be empty, an outcome must not be dated in the future, a cursor must come from a previous page, an idempotency
key must not be reused with another body): the test makes the *valid* data the fuzzer
generates obey them (``obey_unwritten_rules``), so that "valid data is accepted" stays a strict check. Those rules are
tested on their own in test_bad_inputs.py and test_properties.py.
"""

from __future__ import annotations

import os
import re
import tomllib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from sqlalchemy import text
from starlette.types import ASGIApp, Receive, Scope, Send

from attrition.api.app import create_app
from attrition.api.schemas import PredictionRequest
from attrition.config import PROJECT_ROOT, Settings
from attrition.db.audit import encode_cursor
from attrition.db.engine import Database
from attrition.security.keys import generate_key
from attrition.security.store import import_key
from tests.helpers import Keys
from tests.reliability.figures import Figures

CONFIG = PROJECT_ROOT / "schemathesis.toml"
EXAMPLES = int(os.environ.get("ATTRITION_FUZZ_EXAMPLES", "8"))
# The configuration reads the key from the environment when it is parsed (at collection): the
# key is drawn here and registered in the test database by the fixture below.
FUZZ_KEY = os.environ.setdefault("ATTRITION_FUZZ_KEY", generate_key().full)


def _config() -> SchemathesisConfig:
    data = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    data.setdefault("generation", {})["max-examples"] = EXAMPLES
    return SchemathesisConfig.from_dict(data, base_dir=str(PROJECT_ROOT))


class Target:
    """The ASGI app under test, known only once the database fixture has run."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "fuzz_session fixture not set up"
        await self.app(scope, receive, send)


TARGET = Target()
# The document only depends on the code (building it touches no database); the fixture checks
# that the app under test serves exactly this one. /metrics is Prometheus text, not JSON.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(app_env="test")).openapi(), config=_config()
).exclude(path="/metrics")
schema.app = TARGET
schema.location = "/openapi.json"

EMPLOYEE = jsonschema_rs.validator_for(PredictionRequest.model_json_schema())
_VISIBLE = re.compile(r"^[\x21-\x7e]{1,255}$")


def coherent(row: Any) -> Any:
    """A valid profile made to obey the cross-field rules (seniority within the career)."""
    if not isinstance(row, dict) or not EMPLOYEE.is_valid(row):
        return row
    fixed = dict(row)
    fixed["annees_experience_totale"] = min(fixed["annees_experience_totale"], fixed["age"] - 14)
    fixed["annees_dans_l_entreprise"] = min(
        fixed["annees_dans_l_entreprise"], fixed["annees_experience_totale"]
    )
    for field in (
        "annees_dans_le_poste_actuel",
        "annees_depuis_la_derniere_promotion",
        "annees_sous_responsable_actuel",
    ):
        fixed[field] = min(fixed[field], fixed["annees_dans_l_entreprise"])
    return fixed


def _employees(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("employes"), list):
        return {**body, "employes": [coherent(row) for row in body["employes"]]}
    return coherent(body)


def _instant(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def obey_unwritten_rules(case: Any) -> None:
    """Make the valid parts of ``case`` obey the rules JSON Schema cannot express.

    Applied to every case, of every phase; a part that is already invalid is left alone, so a
    negative case stays negative.
    """
    if isinstance(case.body, dict):
        case.body = _employees(case.body)
        when = case.body.get("date")
        if isinstance(when, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", when) and when > _today():
            case.body["date"] = _today()  # an outcome has happened: never in the future
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and _VISIBLE.match(key):
        # Reusing a key with another body is a 422 by design (IETF idempotency-key draft).
        case.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4()}"
    query = case.query or {}
    cursor = query.get("curseur")
    if isinstance(cursor, str) and len(cursor) <= 200:
        query["curseur"] = encode_cursor(len(cursor) + 1)  # a cursor the API could have issued
    since, until = _instant(query.get("depuis")), _instant(query.get("jusqu_a"))
    if until is not None and (since is None or until <= since):
        try:
            query["depuis"] = (until - timedelta(days=1)).isoformat()  # a non-empty period
        except OverflowError:  # year 1: the period starts there and lasts a day
            query["depuis"], query["jusqu_a"] = (
                until.isoformat(),
                (until + timedelta(1)).isoformat(),
            )
    if (case.path_parameters or {}).get("key_id") in PROTECTED:
        # DELETE /v1/keys/{key_id} must never revoke a key another test or the fuzzer uses.
        case.path_parameters["key_id"] = "zzzzzzzz"


PROTECTED: set[str] = set()


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


class FuzzSession:
    """What the fuzzer ran against the app."""

    def __init__(self) -> None:
        self.cases = 0
        self.failures = 0
        self.operations: set[str] = set()


@pytest.fixture(scope="module")
def fuzz_session(
    database: Database, settings: Settings, model_version: str, keys: Keys
) -> Iterator[FuzzSession]:
    from schemathesis.python import asgi

    import_key(database, settings, FUZZ_KEY, "fuzz-admin", "admin")
    with database.owner_engine().connect() as c:
        PROTECTED.update(c.scalars(text("SELECT key_id FROM api_keys WHERE revoked_at IS NULL")))
    app = create_app(settings, database=database)
    assert app.openapi() == schema.raw_schema
    TARGET.app = app
    yield FuzzSession()
    asgi.shutdown_lifespans()


@schema.parametrize()
def test_api_fuzzing(case: Any, fuzz_session: FuzzSession) -> None:
    fuzz_session.cases += 1
    fuzz_session.operations.add(f"{case.operation.method.upper()} {case.operation.path}")
    obey_unwritten_rules(case)
    try:
        case.call_and_validate()
    except BaseException:
        fuzz_session.failures += 1
        raise


def test_fuzzing_spared_the_other_keys(
    fuzz_session: FuzzSession, database: Database, figures: Figures
) -> None:
    """Runs after the fuzzing (same module): no key of the other tests was revoked."""
    with database.owner_engine().connect() as c:
        revoked = set(c.scalars(text("SELECT key_id FROM api_keys WHERE revoked_at IS NOT NULL")))
    assert PROTECTED and not (revoked & PROTECTED)
    assert fuzz_session.cases > 0
    figures.section(
        "fuzzing",
        outil=f"Schemathesis {version('schemathesis')}",
        graine=_config().seed,
        exemples_par_operation=EXAMPLES,
        operations=len(fuzz_session.operations),
        cas_executes=fuzz_session.cases,
        echecs=fuzz_session.failures,
    )
