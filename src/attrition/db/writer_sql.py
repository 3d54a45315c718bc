"""The statements of the group-commit writer (:mod:`attrition.db.writer`), built once.

A group's records travel as one JSON document; the two tables are filled from it by one
statement (``INSERT_MANY``), which, when the group pays a daily quota, also adds to the key's
count after its rows (``INSERT_PAYING_ONE``, ``INSERT_PAYING``).
"""

from __future__ import annotations

from attrition.db.audit import INPUT_COLUMNS as _INPUTS
from attrition.db.audit import OUTPUT_COLUMNS as _OUTPUTS

# Column names come from this module, never from a request; the data is one JSON parameter,
# typed by the tables' own row types (jsonb_populate_record), so that PostgreSQL parses it in
# C instead of the driver adapting thousands of values in Python.
_NEXT_INPUT_ID = "nextval(pg_get_serial_sequence('prediction_inputs', 'id'))"


def _insert_both(*, count_inputs: bool = False) -> str:
    """The CTEs ``i`` and ``p``: the inputs, then the outputs, of the records of ``e``.

    ``count_inputs``: ``i`` returns its ids, so that a later CTE can wait for it.
    """
    returning = " RETURNING id" if count_inputs else ""
    return (
        f"i AS (INSERT INTO prediction_inputs (id, {', '.join(_INPUTS)}) "  # noqa: S608
        f"SELECT e.input_id, {', '.join(f'r.{c}' for c in _INPUTS)} "
        f"FROM e, jsonb_populate_record(NULL::prediction_inputs, e.rec) AS r{returning}), "
        f"p AS (INSERT INTO predictions (input_id, {', '.join(_OUTPUTS)}) "
        f"SELECT e.input_id, {', '.join(f'r.{c}' for c in _OUTPUTS)} "
        "FROM e, jsonb_populate_record(NULL::predictions, e.rec) AS r "
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
