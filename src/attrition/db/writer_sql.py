"""The statements of the group-commit writer (:mod:`attrition.db.writer`), built once.

A group's records travel as one JSON array; each record is the array its MAC covers
(:func:`attrition.db.chain.canonical`: the version, then the values of
``chain.RECORD_FIELDS`` in order) followed by the MAC. The two tables are filled from it by
one statement (``INSERT_MANY``), which, when the group pays a daily quota, also adds to the
key's count after its rows (``INSERT_PAYING_ONE``, ``INSERT_PAYING``).
"""

from __future__ import annotations

from attrition.data.vocabulary import FEATURES_BY_NAME
from attrition.db.chain import INPUT_FIELDS, OUTPUT_FIELDS, RECORD_FIELDS

# Column names and types come from this module, never from a request. Records are arrays,
# not objects keyed by column name: PostgreSQL parsed, sorted and looked up every key of every
# record (jsonb_populate_record), a tenth of its CPU per prediction. Element 0 is the MAC
# version, element n the n-th field of chain.RECORD_FIELDS, the last one the record's MAC.
_NEXT_INPUT_ID = "nextval(pg_get_serial_sequence('prediction_inputs', 'id'))"
_KIND_TYPES = {"int": "int", "float": "float8", "bool": "boolean", "str": "text"}
#: Columns whose type is not that of their kind (enumerations, uuid). A text value is stored
#: in a varchar column by an assignment cast, which refuses a value too long.
_COLUMN_TYPES = {
    "source": "prediction_source",
    "batch_id": "uuid",
    "label": "prediction_label",
    "risk_level": "risk_level",
    **{n: n for n, f in FEATURES_BY_NAME.items() if f.kind == "category"},  # one enum each
}
_POSITION = {name: n + 1 for n, (name, _) in enumerate(RECORD_FIELDS)}
_MAC_POSITION = len(RECORD_FIELDS) + 1


def cast_type(name: str, kind: str) -> str:
    """The SQL type a field is cast to from its element's text (``jsonb`` for JSON fields)."""
    return "jsonb" if kind == "json" else _COLUMN_TYPES.get(name, _KIND_TYPES[kind])


def _value(name: str, kind: str, rec: str) -> str:
    element = f"{rec}->{_POSITION[name]}"
    if kind == "json":
        return f"nullif({element}, 'null'::jsonb)"
    return f"({rec}->>{_POSITION[name]})::{cast_type(name, kind)}"


def _columns(rec: str) -> tuple[str, str, str, str]:
    """Input columns, their values, output columns, their values (``rec``: the record)."""
    return (
        ", ".join(n for n, _ in INPUT_FIELDS),
        ", ".join(_value(n, k, rec) for n, k in INPUT_FIELDS),
        ", ".join([*(n for n, _ in OUTPUT_FIELDS), "record_mac"]),
        ", ".join([*(_value(n, k, rec) for n, k in OUTPUT_FIELDS), f"{rec}->>{_MAC_POSITION}"]),
    )


def _insert_both(source: str = "e", *, count_inputs: bool = False) -> str:
    """The CTEs ``i`` and ``p``: the inputs, then the outputs, of the records of ``source``.

    ``count_inputs``: ``i`` returns its ids, so that a later CTE can wait for it.
    """
    returning = " RETURNING id" if count_inputs else ""
    inputs, input_values, outputs, output_values = _columns(f"{source}.rec")
    return (
        f"i AS (INSERT INTO prediction_inputs (id, {inputs}) "  # noqa: S608
        f"SELECT {source}.input_id, {input_values} FROM {source}{returning}), "
        f"p AS (INSERT INTO predictions (input_id, {outputs}) "
        f"SELECT {source}.input_id, {output_values} FROM {source} "
        "RETURNING id, input_id, created_at) "
    )


INSERT_MANY = (
    f"WITH e AS MATERIALIZED (SELECT {_NEXT_INPUT_ID} AS input_id, e.rec, e.ord "  # noqa: S608
    "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(rec, ord)), "
    + _insert_both()
    + "SELECT p.id, p.input_id, p.created_at FROM p JOIN e USING (input_id) ORDER BY e.ord"
)

# INSERT_MANY paying for itself: the daily-quota takes of the group in the same statement, so
# the same transaction, made LAST. Adding to a key's count locks its row until the commit:
# taken first, the lock was held through the whole write, and two groups of one key (from
# two processes or replicas) were written one after the other. The takes wait for the rows
# (the ``WHERE`` reads ``i`` and ``p``, so both are written before); a take that would pass
# its ceiling breaks the ``within_ceiling`` check of ``usage_counters`` and aborts the whole
# statement: nothing is written, and the writer tries each request again alone
# (GroupCommitWriter._write_paying). Rows of kind 0 are the predictions written (``n``: their
# place in the array), rows of kind 1 the counts after the takes (``n``: the take's idx).
_PAID_RECORDS = (
    f"e AS MATERIALIZED (SELECT {_NEXT_INPUT_ID} AS input_id, e.rec, e.ord "  # noqa: S608
    "FROM jsonb_array_elements(%(records)s::jsonb) WITH ORDINALITY AS e(rec, ord)), "
)
_AFTER_ROWS = "(SELECT count(*) FROM i) + (SELECT count(*) FROM p) > 0"
_ADD = (
    "ON CONFLICT (counter, key, day) DO UPDATE "
    "SET used = u.used + excluded.used, ceiling = excluded.ceiling "
)
_WRITTEN = (
    "SELECT 0 AS kind, e.ord AS n, p.id, p.input_id, p.created_at, NULL::bigint AS used "
    "FROM p JOIN e USING (input_id) UNION ALL "
)
#: The group pays one take (one key): the params of :func:`usage.params`, and ``records``.
INSERT_PAYING_ONE = (
    "WITH "  # noqa: S608 - names and fragments from this module only
    + _PAID_RECORDS
    + _insert_both(count_inputs=True)
    + ", q AS (INSERT INTO usage_counters AS u (counter, key, day, used, ceiling) "
    f"SELECT %(counter)s, %(key)s, %(day)s, %(amount)s, %(ceiling)s WHERE {_AFTER_ROWS} "
    + _ADD
    + "RETURNING used) "
    + _WRITTEN
    + "SELECT 1, 0, NULL, NULL, NULL, used FROM q ORDER BY 1, 2"
)
#: The group pays several takes (``takes``: :func:`usage.takes_json`), locked in one order.
INSERT_PAYING = (
    "WITH "  # noqa: S608 - names and fragments from this module only
    + _PAID_RECORDS
    + _insert_both(count_inputs=True)
    + ", t AS (SELECT * FROM jsonb_to_recordset(%(takes)s::jsonb) "  # noqa: S608
    "AS t(idx int, counter text, key text, day date, amount int, ceiling int)), "
    "q AS (INSERT INTO usage_counters AS u (counter, key, day, used, ceiling) "
    f"SELECT counter, key, day, amount, ceiling FROM t WHERE {_AFTER_ROWS} "
    "ORDER BY counter, key, day "
    + _ADD
    + "RETURNING counter, key, day, used) "
    + _WRITTEN
    + "SELECT 1, t.idx, NULL, NULL, NULL, q.used FROM t JOIN q USING (counter, key, day) "
    "ORDER BY 1, 2"
)
#: The check of ``usage_counters`` a refused take breaks (migration 0014).
CEILING_CHECK = "ck_usage_counters_within_ceiling"

# One request of one record, the usual group at low load: the record alone instead of an
# array (no unnesting, numbering, join and sort of the results), one row back: the prediction
# and, when it pays, its key's count after the take (measured: about a tenth less PostgreSQL
# CPU for a lone prediction). Same rows, same rules for the take as above.
_ONE = f"WITH r AS MATERIALIZED (SELECT {_NEXT_INPUT_ID} AS input_id, %(record)s::jsonb AS rec), "
INSERT_ONE = (
    _ONE  # noqa: S608 - names and fragments from this module only
    + _insert_both("r")
    + "SELECT p.id, p.input_id, p.created_at, NULL::bigint FROM p"
)
#: The params of :func:`usage.params`, and ``record``.
INSERT_ONE_PAYING = (
    _ONE  # noqa: S608 - names and fragments from this module only
    + _insert_both("r", count_inputs=True)
    + ", q AS (INSERT INTO usage_counters AS u (counter, key, day, used, ceiling) "
    f"SELECT %(counter)s, %(key)s, %(day)s, %(amount)s, %(ceiling)s WHERE {_AFTER_ROWS} "
    + _ADD
    + "RETURNING used) "
    "SELECT p.id, p.input_id, p.created_at, (SELECT used FROM q) FROM p"
)
