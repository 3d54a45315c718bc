"""keyed audit chain, sealing queue, one-way revocation, client request id

Revision ID: 0005
Revises: 0007
Create Date: 2026-11-30 00:30:00+00:00

The chain of revision 0002 (unkeyed SHA-256, ordered by prediction id, sealed after a lag)
is dropped: anyone holding the database could recompute it, and its order skipped rows that
committed late. The new chain is ordered by a position the sealer assigns, its links are
HMACs under a key the database never holds (``ATTRITION_AUDIT_KEY``), and every prediction
carries the MAC the service computed when it answered (``record_mac``). Existing
predictions are queued for sealing again from the genesis.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
# Assigned "0004"; chained after 0007 (the head of main) so that the branch has one head.
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every committed prediction is queued for sealing by its own INSERT statement (a
# statement-level trigger: one INSERT ... SELECT per statement, whatever the batch size). The
# function runs as its owner so that the application role needs no right on the queue.
ENQUEUE_FUNCTION = """
CREATE FUNCTION audit_enqueue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO audit_pending (prediction_id) SELECT id FROM new_rows;
    RETURN NULL;
END;
$$
"""

# The one path that writes links: positions must continue the chain without a gap, under the
# sealers' advisory lock (7140001). Runs as the owner; the application role may EXECUTE it
# but has no INSERT on audit_chain.
APPEND_FUNCTION = """
CREATE FUNCTION audit_append(
    p_positions bigint[], p_predictions bigint[], p_macs text[], p_links text[]
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    head bigint;
    n integer := coalesce(array_length(p_positions, 1), 0);
BEGIN
    IF n = 0 THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(7140001);
    SELECT max(position) INTO head FROM audit_chain;
    IF head IS NULL THEN
        SELECT up_to_position INTO head FROM purge_log
        WHERE up_to_position IS NOT NULL ORDER BY id DESC LIMIT 1;
    END IF;
    IF p_positions[1] <> coalesce(head, 0) + 1
       OR p_positions[n] <> p_positions[1] + n - 1 THEN
        RAISE EXCEPTION 'chaîne d''audit : positions % à % après %',
            p_positions[1], p_positions[n], coalesce(head, 0)
            USING ERRCODE = 'serialization_failure';
    END IF;
    PERFORM set_config('attrition.sealing', 'on', true);
    INSERT INTO audit_chain (position, prediction_id, record_mac, chain_hash)
    SELECT * FROM unnest(p_positions, p_predictions, p_macs, p_links);
    PERFORM set_config('attrition.sealing', 'off', true);
    DELETE FROM audit_pending WHERE prediction_id = ANY(p_predictions);
    RETURN n;
END;
$$
"""

# Links are written only through audit_append (which sets attrition.sealing for its own
# statement). The owner can still set that variable or drop the trigger: the HMAC and the
# published checkpoints are what make such a write detectable.
SEALER_ONLY_FUNCTION = """
CREATE FUNCTION refuse_unsealed_link() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('attrition.sealing', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_chain : les liens ne s''écrivent que par audit_append()'
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""

# Revocation is one-way for every role: a revoked key stays revoked, at the same date.
ONE_WAY_REVOCATION_FUNCTION = """
CREATE FUNCTION refuse_unrevoke() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL
       AND (NEW.revoked_at IS NULL OR NEW.revoked_at <> OLD.revoked_at) THEN
        RAISE EXCEPTION 'clé % révoquée : la révocation est définitive', OLD.key_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$
"""


def upgrade() -> None:
    op.add_column("predictions", sa.Column("record_mac", sa.String(length=64), nullable=True))
    # Required from now on; rows written before this revision have none (NOT VALID).
    op.execute(
        "ALTER TABLE predictions ADD CONSTRAINT ck_predictions_record_mac "
        "CHECK (record_mac IS NOT NULL) NOT VALID"
    )
    op.add_column(
        "prediction_inputs",
        sa.Column("client_request_id", sa.String(length=64), nullable=True),
    )
    op.add_column(
        "rejected_requests",
        sa.Column("client_request_id", sa.String(length=64), nullable=True),
    )
    op.add_column("purge_log", sa.Column("up_to_position", sa.BigInteger(), nullable=True))

    op.drop_table("audit_chain")
    op.create_table(
        "audit_chain",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("prediction_id", sa.BigInteger(), nullable=False),
        sa.Column("record_mac", sa.String(length=64), nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "sealed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_audit_chain")),
        sa.UniqueConstraint("prediction_id", name=op.f("uq_audit_chain_prediction_id")),
    )
    op.create_table(
        "audit_pending",
        sa.Column("prediction_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("prediction_id", name=op.f("pk_audit_pending")),
    )
    op.execute("INSERT INTO audit_pending (prediction_id) SELECT id FROM predictions")

    op.execute(ENQUEUE_FUNCTION)
    op.execute(
        "CREATE TRIGGER trg_predictions_enqueue AFTER INSERT ON predictions "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit_enqueue()"
    )
    op.execute(APPEND_FUNCTION)
    op.execute(
        "REVOKE ALL ON FUNCTION audit_append(bigint[], bigint[], text[], text[]) FROM PUBLIC"
    )
    op.execute(SEALER_ONLY_FUNCTION)
    op.execute(
        "CREATE TRIGGER trg_audit_chain_sealer_only BEFORE INSERT ON audit_chain "
        "FOR EACH ROW EXECUTE FUNCTION refuse_unsealed_link()"
    )
    op.execute(
        "CREATE TRIGGER trg_audit_chain_append_only BEFORE UPDATE OR DELETE ON audit_chain "
        "FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()"
    )
    op.execute(
        "CREATE TRIGGER trg_audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain "
        "FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change()"
    )
    # GDPR erasure: the records of one person are deleted; each keeps a signed tombstone
    # (the record MAC its link covers, and an HMAC only the audit key can produce).
    op.create_table(
        "erasure_log",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("prediction_id", sa.BigInteger(), nullable=False),
        sa.Column("record_mac", sa.String(length=64), nullable=False),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column(
            "erased_by",
            sa.String(length=64),
            server_default=sa.text("current_user"),
            nullable=False,
        ),
        sa.Column("mac", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_log")),
        sa.UniqueConstraint("prediction_id", name=op.f("uq_erasure_log_prediction_id")),
    )
    op.execute(
        "CREATE TRIGGER trg_erasure_log_append_only BEFORE UPDATE OR DELETE ON erasure_log "
        "FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()"
    )
    op.execute(ONE_WAY_REVOCATION_FUNCTION)
    op.execute(
        "CREATE TRIGGER trg_api_keys_one_way_revocation BEFORE UPDATE OF revoked_at ON api_keys "
        "FOR EACH ROW EXECUTE FUNCTION refuse_unrevoke()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_api_keys_one_way_revocation ON api_keys")
    op.execute("DROP FUNCTION IF EXISTS refuse_unrevoke()")
    op.drop_table("erasure_log")
    op.execute("DROP TRIGGER IF EXISTS trg_predictions_enqueue ON predictions")
    op.execute("DROP FUNCTION IF EXISTS audit_enqueue()")
    op.execute("DROP FUNCTION IF EXISTS audit_append(bigint[], bigint[], text[], text[])")
    op.drop_table("audit_pending")
    op.drop_table("audit_chain")
    op.execute("DROP FUNCTION IF EXISTS refuse_unsealed_link()")
    op.create_table(
        "audit_chain",
        sa.Column("prediction_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "sealed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("prediction_id", name=op.f("pk_audit_chain")),
    )
    op.drop_column("purge_log", "up_to_position")
    op.drop_column("prediction_inputs", "client_request_id")
    op.drop_column("rejected_requests", "client_request_id")
    op.execute("ALTER TABLE predictions DROP CONSTRAINT IF EXISTS ck_predictions_record_mac")
    op.drop_column("predictions", "record_mac")
