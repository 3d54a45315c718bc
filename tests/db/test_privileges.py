"""What the application role can do, read from the catalog, against a reviewed allow-list.

Any new grant makes this test fail until the list below is changed on purpose. The second
half tries, as the application role (what a compromised API worker holds), the writes the
issue observed: un-revoking a key, switching the served model, writing a chain link,
rewriting the trail.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from attrition.config import Settings
from attrition.db import chain
from attrition.db.engine import Database
from attrition.security.store import create_key

# Reviewed: table -> privileges of the application role (table level).
TABLES = {
    "employees": {"SELECT"},
    "performance_reviews": {"SELECT"},
    "survey_responses": {"SELECT"},
    "employee_features": {"SELECT"},
    "model_versions": {"SELECT"},
    "prediction_inputs": {"SELECT", "INSERT"},
    "predictions": {"SELECT", "INSERT"},
    "rejected_requests": {"SELECT", "INSERT"},
    "api_keys": {"SELECT", "INSERT"},
    "idempotency_keys": {"SELECT", "INSERT", "DELETE"},
    "audit_chain": {"SELECT"},
    "audit_pending": {"SELECT"},
    "purge_log": {"SELECT"},
    "users": {"SELECT", "INSERT"},
    "web_sessions": {"SELECT", "INSERT", "DELETE"},
    "employee_outcomes": {"SELECT", "INSERT"},
    "usage_counters": {"SELECT", "INSERT", "UPDATE"},
}
# Column-level grants: only the key's last use and its (one-way) revocation.
COLUMNS = {
    ("api_keys", "last_used_at", "UPDATE"),
    ("api_keys", "revoked_at", "UPDATE"),
    *(
        ("users", column, "UPDATE")
        for column in (
            "password_hash",
            "must_change_password",
            "failed_attempts",
            "locked_until",
            "password_changed_at",
            "last_sign_in_at",
            "disabled_at",
            "api_key_id",  # re-enabling gives the account a new audit identity
        )
    ),
    ("web_sessions", "last_seen_at", "UPDATE"),
    ("web_sessions", "revoked_at", "UPDATE"),
}
SEQUENCES = {
    "prediction_inputs_id_seq": {"USAGE"},
    "predictions_id_seq": {"USAGE"},
    "rejected_requests_id_seq": {"USAGE"},
    "api_keys_id_seq": {"USAGE"},
    "users_id_seq": {"USAGE"},
    "web_sessions_id_seq": {"USAGE"},
    "employee_outcomes_id_seq": {"USAGE"},
}
FUNCTIONS = {"audit_append": {"EXECUTE"}}

_PRIVILEGES = """
SELECT c.relname, c.relkind::text, a.privilege_type
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
     aclexplode(c.relacl) a
WHERE n.nspname = 'public' AND a.grantee = %(role)s::regrole
"""
_COLUMN_PRIVILEGES = """
SELECT c.relname, att.attname, a.privilege_type
FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(att.attacl) a
WHERE n.nspname = 'public' AND a.grantee = %(role)s::regrole
"""
_FUNCTION_PRIVILEGES = """
SELECT p.proname, a.privilege_type
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(p.proacl) a
WHERE n.nspname = 'public' AND a.grantee = %(role)s::regrole
"""


@pytest.fixture
def owner(database: Database) -> Iterator[psycopg.Connection]:
    with database.connect(autocommit=True) as conn:
        yield conn


@pytest.fixture
def app_role(database: Database) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database.app_conninfo, autocommit=True) as conn:
        yield conn


def test_the_application_role_has_exactly_the_reviewed_grants(
    owner: psycopg.Connection, settings: Settings
) -> None:
    role = {"role": settings.db.app_role}
    tables: dict[str, set[str]] = {}
    sequences: dict[str, set[str]] = {}
    for name, kind, privilege in owner.execute(_PRIVILEGES, role):
        (sequences if kind == "S" else tables).setdefault(name, set()).add(privilege)
    assert tables == TABLES
    assert sequences == SEQUENCES
    assert set(owner.execute(_COLUMN_PRIVILEGES, role).fetchall()) == COLUMNS
    functions: dict[str, set[str]] = {}
    for name, privilege in owner.execute(_FUNCTION_PRIVILEGES, role):
        functions.setdefault(name, set()).add(privilege)
    assert functions == FUNCTIONS
    attributes = owner.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
        "(SELECT count(*) FROM pg_auth_members WHERE member = r.oid) "
        "FROM pg_roles r WHERE rolname = %(role)s",
        role,
    ).fetchone()
    assert attributes == (False, False, False, False, False, 0)
    assert owner.execute(
        "SELECT has_schema_privilege(%(role)s, 'public', 'CREATE')", role
    ).fetchone() == (False,)


def test_the_application_role_cannot_escape(
    database: Database, settings: Settings, owner: psycopg.Connection, app_role: psycopg.Connection
) -> None:
    created = create_key(database, settings, name="revoked-for-test", role="predicteur")
    row = owner.execute("SELECT id FROM api_keys WHERE key_id = %s", (created.key_id,)).fetchone()
    assert row is not None
    # Revoking is allowed (DELETE /v1/keys/...), un-revoking is not, even for the owner.
    app_role.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", row)
    for conn in (app_role, owner):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="révocation est définitive"):
            conn.execute("UPDATE api_keys SET revoked_at = NULL WHERE id = %s", row)
    refused = [
        "UPDATE model_versions SET is_active = NOT is_active",
        "INSERT INTO audit_chain (position, prediction_id, record_mac, chain_hash) "
        "VALUES (999999999, 999999999, repeat('0', 64), repeat('0', 64))",
        "UPDATE predictions SET probability = 0.0001",
        "DELETE FROM prediction_inputs",
        "TRUNCATE predictions CASCADE",
        "DELETE FROM audit_pending",
        "UPDATE api_keys SET role = 'admin'",
        "INSERT INTO model_versions (version) VALUES ('x')",
    ]
    for statement in refused:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app_role.execute(statement)
    # The one sealing path refuses a link that does not continue the chain.
    with pytest.raises(psycopg.errors.SerializationFailure, match="positions"):
        app_role.execute(
            "SELECT audit_append(ARRAY[10000000000]::bigint[], ARRAY[1]::bigint[], "
            "ARRAY[repeat('0', 64)], ARRAY[repeat('0', 64)])"
        )
    # Even the owner writes a link only through audit_append (the owner can lift this: the
    # HMAC and the checkpoints are what detect it, see tests/api/test_audit_chain.py).
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="audit_append"):
        owner.execute(
            "INSERT INTO audit_chain (position, prediction_id, record_mac, chain_hash) "
            "VALUES (999999999, 999999999, repeat('0', 64), repeat('0', 64))"
        )
    assert chain.LOCK_ID == 7_140_001  # the lock audit_append takes (migration 0005)
