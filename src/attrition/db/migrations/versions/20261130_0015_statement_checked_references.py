"""the audit trail's key and model version references checked per statement, without locks

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 16:30:00+00:00

Every prediction input names the key that sent it, every prediction the model version that
made it. As foreign keys, each row's reference was checked by its own trigger call, which
also took a share lock on the referenced row: every writer of the trail locked the same key
row and the same model version row, so PostgreSQL kept making MultiXacts for them, and the
checks were about a quarter of its CPU for a batch's write (ADR 27). The references are now
checked once per statement (one anti-join over the statement's new rows), and the
referenced rows can no longer go away: keys and model versions are never deleted (a key is
revoked, a version retired) and their ``id`` never changes. ``predictions.input_id`` keeps
its foreign key (a row written by the same statement, never shared).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (child table, column, parent table, French name of the parent, constraint it replaces).
REFERENCES = (
    (
        "prediction_inputs",
        "api_key_id",
        "api_keys",
        "clé API",
        "fk_prediction_inputs_api_key_id_api_keys",
    ),
    (
        "predictions",
        "model_version_id",
        "model_versions",
        "version de modèle",
        "fk_predictions_model_version_id_model_versions",
    ),
)


def _check_function(child: str, column: str, parent: str, label: str) -> str:
    # Runs as the writer (who may read keys and versions): no SECURITY DEFINER, no SET
    # clause, each of which made every call switch roles or settings (a third of the cost of
    # a lone prediction's triggers); the parent is schema-qualified instead. A NULL
    # reference is allowed, as by a foreign key. ERRCODE 23503 is foreign_key_violation.
    # Names and labels come from REFERENCES above, never from input.
    return f"""
CREATE FUNCTION check_{child}_{column}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    SELECT n.{column} INTO missing FROM new_rows n
    WHERE n.{column} IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM public.{parent} r WHERE r.id = n.{column})
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '{child}.{column} : {label} % inconnue', missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$
"""  # noqa: S608


# Statement-level: a DELETE or TRUNCATE is refused even when it would remove no row.
REFUSE_REMOVAL_FUNCTION = """
CREATE FUNCTION refuse_referenced_removal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% : les clés API et les versions de modèle ne sont jamais supprimées '
        '(une clé se révoque, une version se retire ; la trace d''audit y renvoie)',
        TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$
"""

REFUSE_RENUMBERING_FUNCTION = """
CREATE FUNCTION refuse_referenced_renumbering() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id THEN
        RAISE EXCEPTION '% : l''identifiant d''une ligne ne change jamais '
            '(la trace d''audit y renvoie)', TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$
"""


def upgrade() -> None:
    op.execute(REFUSE_REMOVAL_FUNCTION)
    op.execute(REFUSE_RENUMBERING_FUNCTION)
    for child, column, parent, label, constraint in REFERENCES:
        # The parent is protected before the foreign key goes: no moment without a guard.
        op.execute(
            f"CREATE TRIGGER trg_{parent}_never_removed BEFORE DELETE OR TRUNCATE ON {parent} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_referenced_removal()"
        )
        op.execute(
            f"CREATE TRIGGER trg_{parent}_fixed_id BEFORE UPDATE OF id ON {parent} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_referenced_renumbering()"
        )
        op.execute(_check_function(child, column, parent, label))
        op.execute(
            f"CREATE TRIGGER trg_{child}_known_{column} AFTER INSERT ON {child} "
            "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
            f"EXECUTE FUNCTION check_{child}_{column}()"
        )
        op.drop_constraint(constraint, child, type_="foreignkey")


def downgrade() -> None:
    for child, column, parent, _, constraint in REFERENCES:
        op.create_foreign_key(constraint, child, parent, [column], ["id"])
        op.execute(f"DROP TRIGGER IF EXISTS trg_{child}_known_{column} ON {child}")
        op.execute(f"DROP FUNCTION IF EXISTS check_{child}_{column}()")
        op.execute(f"DROP TRIGGER IF EXISTS trg_{parent}_fixed_id ON {parent}")
        op.execute(f"DROP TRIGGER IF EXISTS trg_{parent}_never_removed ON {parent}")
    op.execute("DROP FUNCTION IF EXISTS refuse_referenced_renumbering()")
    op.execute("DROP FUNCTION IF EXISTS refuse_referenced_removal()")
