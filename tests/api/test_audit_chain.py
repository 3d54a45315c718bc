"""The audit trail against its database owner: every forgery is named by `attrition audit verify`.

The owner holds every privilege and can lift or drop the triggers; what it does not hold is
the audit key. Each test tampers as the owner would (the triggers bypassed the way an owner
can), runs `attrition audit verify`, checks that the record and the kind of break are named,
then puts everything back. While a test tampers, it holds the sealers' advisory lock, so
that the app's background sealer does not seal in the middle of the scene.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text
from typer.testing import CliRunner

from attrition.api.schemas import EXAMPLE_EMPLOYEE
from attrition.cli import app as cli
from attrition.config import get_settings
from attrition.db import chain, verification
from attrition.db.engine import Database
from tests.helpers import Keys, auth

MODIFIED, DELETED, INSERTED = verification.MODIFIED, verification.DELETED, verification.INSERTED


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, database: Database) -> Iterator[CliRunner]:
    monkeypatch.setenv("DATABASE_URL", database.owner_url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture
def owner(database: Database) -> Iterator[Connection]:
    """An owner session (autocommit per block) holding the sealers' lock while it tampers."""
    with database.owner_engine().connect() as c:
        yield c
        c.rollback()
        c.execute(text("SELECT pg_advisory_unlock_all()"))
        c.commit()


def hold_sealers(owner: Connection) -> None:
    owner.execute(text("SELECT pg_advisory_lock(:k)"), {"k": chain.LOCK_ID})
    owner.commit()


def predict(client: TestClient, keys: Keys, n: int = 1) -> list[int]:
    ids = []
    for i in range(n):
        body = {**EXAMPLE_EMPLOYEE, "age": 30 + i}
        r = client.post("/v1/predictions", json=body, headers=auth(keys.predicteur))
        assert r.status_code == 201, r.text
        ids.append(int(r.json()["prediction_id"]))
    return ids


def seal(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["audit", "seal"])
    assert result.exit_code == 0, result.output


def verify(runner: CliRunner) -> tuple[int, str]:
    result = runner.invoke(cli, ["audit", "verify"])
    return result.exit_code, " ".join(result.output.split())


def as_owner(owner: Connection, *statements: tuple[str, dict[str, object]]) -> None:
    """Run ``statements`` in one committed transaction, past the append-only triggers."""
    owner.execute(text("SET attrition.allow_purge = 'on'"))
    owner.execute(text("SET attrition.sealing = 'on'"))
    try:
        for sql, params in statements:
            owner.execute(text(sql), params)
        owner.commit()
    except BaseException:
        owner.rollback()
        raise
    finally:
        owner.execute(text("RESET attrition.allow_purge"))
        owner.execute(text("RESET attrition.sealing"))
        owner.commit()


def probability(owner: Connection, pid: int) -> float:
    value = owner.scalar(text("SELECT probability FROM predictions WHERE id = :i"), {"i": pid})
    owner.commit()
    return float(value)


def test_an_intact_trail_verifies_and_unsealed_is_not_a_break(
    client: TestClient, keys: Keys, runner: CliRunner, owner: Connection
) -> None:
    predict(client, keys, 2)
    seal(runner)
    code, out = verify(runner)
    assert code == 0 and "Chaîne intacte" in out and " 0 pas encore scellée" in out, out
    hold_sealers(owner)
    [pid] = predict(client, keys)
    code, out = verify(runner)
    assert code == 0, out
    assert "1 pas encore scellée(s)" in out and str(pid) in out


def test_a_edited_sealed_rows_are_each_named(
    client: TestClient, keys: Keys, runner: CliRunner, owner: Connection
) -> None:
    first, _, third = predict(client, keys, 3)
    seal(runner)
    hold_sealers(owner)
    genuine = {pid: probability(owner, pid) for pid in (first, third)}
    as_owner(
        owner,
        *(("UPDATE predictions SET probability = 0.0001 WHERE id = :i", {"i": p}) for p in genuine),
    )
    try:
        code, out = verify(runner)
        assert code == 2, out
        # Every break, not only the first.
        assert f"prédiction {first} (lien n°" in out and f"prédiction {third} (lien n°" in out
        assert "2 rupture(s) (2 enregistrement modifié)" in out, out
    finally:
        as_owner(
            owner,
            *(
                ("UPDATE predictions SET probability = :p WHERE id = :i", {"p": v, "i": p})
                for p, v in genuine.items()
            ),
        )
    assert verify(runner)[0] == 0


def test_b_a_row_edited_before_it_is_sealed_is_caught(
    client: TestClient, keys: Keys, runner: CliRunner, owner: Connection
) -> None:
    seal(runner)
    hold_sealers(owner)
    [pid] = predict(client, keys)
    genuine = probability(owner, pid)
    as_owner(owner, ("UPDATE predictions SET probability = 0.0001 WHERE id = :i", {"i": pid}))
    try:
        code, out = verify(runner)
        assert code == 2, out
        assert f"prédiction {pid} : {MODIFIED}" in out and "pas encore scellée" in out
        # Sealed in its forged form, it is still reported.
        owner.execute(text("SELECT pg_advisory_unlock_all()"))
        owner.commit()
        seal(runner)
        code, out = verify(runner)
        assert code == 2 and f"prédiction {pid} (lien n°" in out and MODIFIED in out, out
    finally:
        as_owner(
            owner,
            ("UPDATE predictions SET probability = :p WHERE id = :i", {"p": genuine, "i": pid}),
        )
    assert verify(runner)[0] == 0


def test_c_an_edit_with_every_later_link_recomputed_is_caught(
    client: TestClient, keys: Keys, runner: CliRunner, owner: Connection
) -> None:
    ids = predict(client, keys, 3)
    seal(runner)
    hold_sealers(owner)
    target = ids[0]
    genuine = probability(owner, target)
    links = owner.execute(
        text(
            "SELECT position, chain_hash FROM audit_chain WHERE position >= "
            "(SELECT position FROM audit_chain WHERE prediction_id = :i) ORDER BY position"
        ),
        {"i": target},
    ).all()
    owner.commit()
    # Without the key, the owner can only recompute the links with some other function.
    forged = [(p, hashlib.sha256(f"forged-{h}".encode()).hexdigest()) for p, h in links]
    as_owner(
        owner,
        ("UPDATE predictions SET probability = 0.0001 WHERE id = :i", {"i": target}),
        *(
            ("UPDATE audit_chain SET chain_hash = :h WHERE position = :p", {"h": h, "p": p})
            for p, h in forged
        ),
    )
    try:
        code, out = verify(runner)
        assert code == 2, out
        assert f"prédiction {target} (lien n° {links[0][0]}) : {MODIFIED}" in out, out
        assert f"prédiction {target} (lien n° {links[0][0]}) : {INSERTED}" in out, out
        assert f"prédiction {ids[-1]} (lien n°" in out
    finally:
        as_owner(
            owner,
            ("UPDATE predictions SET probability = :p WHERE id = :i", {"p": genuine, "i": target}),
            *(
                ("UPDATE audit_chain SET chain_hash = :h WHERE position = :p", {"h": h, "p": p})
                for p, h in links
            ),
        )
    assert verify(runner)[0] == 0


def test_d_deleting_the_newest_rows_with_their_links_is_caught(
    client: TestClient, keys: Keys, runner: CliRunner, owner: Connection
) -> None:
    ids = predict(client, keys, 3)
    seal(runner)  # publishes a checkpoint of the head outside the database
    hold_sealers(owner)
    newest = ids[1:]
    head = owner.execute(
        text("SELECT max(position) FROM audit_chain WHERE prediction_id = ANY(:ids)"),
        {"ids": newest},
    ).scalar_one()
    assert head == owner.execute(text("SELECT max(position) FROM audit_chain")).scalar_one()
    owner.execute(
        text(
            "CREATE TEMP TABLE saved_c AS SELECT * FROM audit_chain WHERE prediction_id = ANY(:i)"
        ),
        {"i": newest},
    )
    owner.execute(
        text("CREATE TEMP TABLE saved_p AS SELECT * FROM predictions WHERE id = ANY(:i)"),
        {"i": newest},
    )
    owner.execute(
        text(
            "CREATE TEMP TABLE saved_i AS SELECT * FROM prediction_inputs "
            "WHERE id IN (SELECT input_id FROM saved_p)"
        )
    )
    owner.commit()
    as_owner(
        owner,
        ("DELETE FROM audit_chain WHERE prediction_id = ANY(:i)", {"i": newest}),
        ("DELETE FROM predictions WHERE id = ANY(:i)", {"i": newest}),
        ("DELETE FROM prediction_inputs WHERE id IN (SELECT id FROM saved_i)", {}),
    )
    try:
        code, out = verify(runner)
        assert code == 2, out
        assert f"prédiction {ids[-1]} (lien n° {head}) : {DELETED}" in out, out
        assert "point de contrôle" in out
    finally:
        as_owner(
            owner,
            ("INSERT INTO prediction_inputs SELECT * FROM saved_i", {}),
            ("INSERT INTO predictions SELECT * FROM saved_p", {}),
            ("INSERT INTO audit_chain SELECT * FROM saved_c", {}),
            ("DELETE FROM audit_pending WHERE prediction_id = ANY(:i)", {"i": newest}),
            ("DROP TABLE saved_c, saved_p, saved_i", {}),
        )
    assert verify(runner)[0] == 0


def test_e_a_forged_link_is_caught(
    client: TestClient, keys: Keys, runner: CliRunner, owner: Connection
) -> None:
    seal(runner)
    hold_sealers(owner)
    [pid] = predict(client, keys)
    head = owner.execute(text("SELECT max(position) FROM audit_chain")).scalar_one()
    mac = owner.execute(
        text("SELECT record_mac FROM predictions WHERE id = :i"), {"i": pid}
    ).scalar_one()
    far = 10**12
    as_owner(
        owner,
        (
            "INSERT INTO audit_chain (position, prediction_id, record_mac, chain_hash) "
            "VALUES (:p, :i, :m, :h)",
            {"p": head + 1, "i": pid, "m": mac, "h": "f" * 64},
        ),
        (
            "INSERT INTO audit_chain (position, prediction_id, record_mac, chain_hash) "
            "VALUES (:p, :i, :m, :h)",
            {"p": head + 2, "i": far, "m": mac, "h": "e" * 64},
        ),
    )
    try:
        code, out = verify(runner)
        assert code == 2, out
        assert f"prédiction {pid} (lien n° {head + 1}) : {INSERTED}" in out, out
        assert f"prédiction {far} (lien n° {head + 2}) : {INSERTED}" in out, out
    finally:
        as_owner(owner, ("DELETE FROM audit_chain WHERE position > :h", {"h": head}))
    assert verify(runner)[0] == 0


def test_checkpoint_endpoint_is_signed_for_auditors(
    client: TestClient, keys: Keys, runner: CliRunner, tmp_path: object
) -> None:
    predict(client, keys)
    seal(runner)
    assert client.get("/v1/audit/checkpoint", headers=auth(keys.predicteur)).status_code == 403
    r = client.get("/v1/audit/checkpoint", headers=auth(keys.auditeur))
    assert r.status_code == 200, r.text
    body = r.json()
    checkpoint = chain.Checkpoint(**body)
    settings = client.app.state.settings  # type: ignore[attr-defined]
    from attrition.security.secrets import audit_key

    assert checkpoint.valid(audit_key(settings))
    assert not chain.Checkpoint(**{**body, "position": body["position"] + 1}).valid(
        audit_key(settings)
    )


def test_f_a_record_inserted_by_the_owner_is_caught(
    client: TestClient, keys: Keys, runner: CliRunner, owner: Connection
) -> None:
    """A copy of an authentic record (its MAC is valid) and a fabricated one (no valid MAC)."""
    [pid] = predict(client, keys)
    seal(runner)
    hold_sealers(owner)
    owner.execute(
        text(
            "CREATE TEMP TABLE fake_i AS SELECT i.* FROM prediction_inputs i "
            "JOIN predictions p ON p.input_id = i.id WHERE p.id = :i"
        ),
        {"i": pid},
    )
    owner.execute(text("CREATE TEMP TABLE fake_p AS SELECT * FROM predictions WHERE id = :i"),
                  {"i": pid})  # fmt: skip
    owner.execute(
        text("UPDATE fake_i SET id = nextval(pg_get_serial_sequence('prediction_inputs', 'id'))")
    )
    owner.execute(
        text(
            "UPDATE fake_p SET id = nextval(pg_get_serial_sequence('predictions', 'id')), "
            "input_id = (SELECT id FROM fake_i)"
        )
    )
    copy = owner.execute(text("SELECT id FROM fake_p")).scalar_one()
    owner.commit()
    as_owner(
        owner,
        ("INSERT INTO prediction_inputs SELECT * FROM fake_i", {}),
        ("INSERT INTO predictions SELECT * FROM fake_p", {}),
    )
    try:
        code, out = verify(runner)
        assert code == 2, out
        assert f"prédiction {copy} : {INSERTED} — copie de la prédiction {pid}" in out, out
    finally:
        as_owner(
            owner,
            ("DELETE FROM predictions WHERE id = :i", {"i": copy}),
            ("DELETE FROM prediction_inputs WHERE id = (SELECT id FROM fake_i)", {}),
            ("DELETE FROM audit_pending WHERE prediction_id = :i", {"i": copy}),
            ("DROP TABLE fake_i, fake_p", {}),
        )
    assert verify(runner)[0] == 0
