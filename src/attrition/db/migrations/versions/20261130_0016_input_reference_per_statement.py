"""a prediction's input reference checked per statement, without locking the input row

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 20:10:00+00:00

``predictions.input_id`` was a foreign key: PostgreSQL checked each new prediction by its own
trigger call, which also locked the input row (``FOR KEY SHARE``). The input is written by the
same statement and shared by no one, yet the lock cost a WAL record and a dirtied page per
prediction, about a tenth of PostgreSQL's CPU for a group of predictions (ADR 30). The
reference is now checked once per statement, in the trigger that already checks the model
version (0015), and what the foreign key refused stays refused: deleting or truncating an
input that still has its prediction (the purge removes the prediction first), changing an
input's ``id`` or a prediction's ``input_id`` (even with the purge's setting on).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "fk_predictions_input_id_prediction_inputs"


def _reference(column: str, parent: str, label: str, *, nullable: bool) -> str:
    """One reference of the statement's new predictions, checked by one anti-join."""
    allowed_null = f"n.{column} IS NOT NULL\n      AND " if nullable else ""
    return f"""
    SELECT n.{column} INTO missing FROM new_rows n
    WHERE {allowed_null}NOT EXISTS (SELECT 1 FROM public.{parent} r WHERE r.id = n.{column})
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'predictions.{column} : {label} % inconnue', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;"""  # noqa: S608 - names and labels from this module, never from input


_MODEL_VERSION = _reference(
    "model_version_id", "model_versions", "version de modèle", nullable=True
)
_INPUT = _reference("input_id", "prediction_inputs", "entrée", nullable=False)


# Both references of a new prediction, one anti-join each over the statement's rows, in one
# trigger call (a call is most of the cost for a lone prediction). Runs as the writer, who
# reads versions and inputs (no SECURITY DEFINER: see 0015). ERRCODE 23503, as a foreign key.
def _check_function(name: str, checks: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN{checks}
    RETURN NULL;
END;
$$
"""


# What ON DELETE NO ACTION refused: an input removed while its prediction stays. TRUNCATE
# has no transition table: it is refused while any prediction exists.
REFUSE_ANSWERED_REMOVAL = """
CREATE FUNCTION refuse_answered_input_removal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    answered bigint;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        SELECT p.input_id INTO answered FROM public.predictions p LIMIT 1;
    ELSE
        SELECT o.id INTO answered FROM old_rows o
        WHERE EXISTS (SELECT 1 FROM public.predictions p WHERE p.input_id = o.id)
        LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'prediction_inputs : l''entrée % a encore sa prédiction '
            '(supprimer la prédiction d''abord)', answered
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$
"""

REFUSE_REASSIGNMENT = """
CREATE FUNCTION refuse_input_reassignment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.input_id IS DISTINCT FROM OLD.input_id THEN
        RAISE EXCEPTION 'predictions : l''entrée d''une prédiction ne change jamais'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$
"""

TRIGGERS = (
    "CREATE TRIGGER trg_prediction_inputs_answered_kept AFTER DELETE ON prediction_inputs "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION refuse_answered_input_removal()",
    "CREATE TRIGGER trg_prediction_inputs_answered_not_truncated BEFORE TRUNCATE "
    "ON prediction_inputs FOR EACH STATEMENT EXECUTE FUNCTION refuse_answered_input_removal()",
    # refuse_referenced_renumbering() comes from 0015 (keys and model versions).
    "CREATE TRIGGER trg_prediction_inputs_fixed_id BEFORE UPDATE OF id ON prediction_inputs "
    "FOR EACH ROW EXECUTE FUNCTION refuse_referenced_renumbering()",
    "CREATE TRIGGER trg_predictions_fixed_input BEFORE UPDATE OF input_id ON predictions "
    "FOR EACH ROW EXECUTE FUNCTION refuse_input_reassignment()",
)
DROPPED_TRIGGERS = (
    ("trg_prediction_inputs_answered_kept", "prediction_inputs"),
    ("trg_prediction_inputs_answered_not_truncated", "prediction_inputs"),
    ("trg_prediction_inputs_fixed_id", "prediction_inputs"),
    ("trg_predictions_fixed_input", "predictions"),
)


def upgrade() -> None:
    # Every guard is in place before the foreign key goes: no moment without one.
    op.execute(_check_function("check_predictions_references", _MODEL_VERSION + _INPUT))
    op.execute(REFUSE_ANSWERED_REMOVAL)
    op.execute(REFUSE_REASSIGNMENT)
    for statement in TRIGGERS:
        op.execute(statement)
    op.execute(
        "CREATE TRIGGER trg_predictions_known_references AFTER INSERT ON predictions "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION check_predictions_references()"
    )
    op.execute("DROP TRIGGER trg_predictions_known_model_version_id ON predictions")
    op.execute("DROP FUNCTION check_predictions_model_version_id()")
    op.drop_constraint(CONSTRAINT, "predictions", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(CONSTRAINT, "predictions", "prediction_inputs", ["input_id"], ["id"])
    # 0015's check of the model version alone, as it was.
    op.execute(_check_function("check_predictions_model_version_id", _MODEL_VERSION))
    op.execute(
        "CREATE TRIGGER trg_predictions_known_model_version_id AFTER INSERT ON predictions "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION check_predictions_model_version_id()"
    )
    op.execute("DROP TRIGGER IF EXISTS trg_predictions_known_references ON predictions")
    op.execute("DROP FUNCTION IF EXISTS check_predictions_references()")
    for trigger, table in DROPPED_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS refuse_input_reassignment()")
    op.execute("DROP FUNCTION IF EXISTS refuse_answered_input_removal()")
