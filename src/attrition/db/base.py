"""Declarative base with an explicit constraint naming convention.

Named constraints make Alembic migrations deterministic and error messages readable
(``ck_employees_age`` says what was violated).
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


#: ``Column.info`` key of a reference checked once per statement by a trigger instead of a
#: foreign key ("table.column" it points to): migration 0015, drawn by :mod:`attrition.db.erd`.
REFERENCES = "references"
