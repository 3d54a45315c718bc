"""The table of usage counters: the daily quotas of every replica (:mod:`attrition.db.usage`)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, CheckConstraint, Date, String
from sqlalchemy.orm import Mapped, mapped_column

from attrition.db.base import Base


class UsageCounter(Base):
    """How much of a daily quota a key has used (``counter`` names the quota)."""

    __tablename__ = "usage_counters"
    __table_args__ = (
        CheckConstraint("used >= 0", name="used_not_negative"),
        # A take adds to ``used`` and sets ``ceiling``: the database refuses to count past it.
        CheckConstraint("ceiling IS NULL OR used <= ceiling", name="within_ceiling"),
    )

    counter: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    used: Mapped[int] = mapped_column(BigInteger)
    ceiling: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
