"""The parts of revision 0001 (initial schema), outside ``versions/``.

Alembic loads every ``.py`` file of ``versions/`` as a revision, so the initial revision's
long parts live here, one module per concern, and the revision calls them in their original
order. This is applied history: the functions must keep executing the same DDL (``make
schema`` leaves ``sql/schema.sql`` unchanged). A schema change goes in a new revision.
"""
