"""Tables of the keyed audit chain: links, the sealing queue, signed GDPR erasures.

See :mod:`attrition.db.chain` (sealing) and :mod:`attrition.db.verification`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Identity, Integer, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from attrition.db.base import Base

TZ = DateTime(timezone=True)


class AuditChain(Base):
    """The keyed chain sealing the audit trail: one link per prediction, at a sealer's position.

    ``chain_hash = HMAC(key, previous chain_hash, position, prediction_id, record_mac)``
    with a key the database never holds (``ATTRITION_AUDIT_KEY``). Written only through the
    ``audit_append`` function (triggers refuse any other INSERT and every UPDATE/DELETE).
    """

    __tablename__ = "audit_chain"

    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    prediction_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    record_mac: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))
    sealed_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class ErasureLog(Base):
    """A GDPR erasure of one sealed prediction: what its link covered, signed by the key."""

    __tablename__ = "erasure_log"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    prediction_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    record_mac: Mapped[str] = mapped_column(String(64))
    erased_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    erased_by: Mapped[str] = mapped_column(String(64), server_default=text("current_user"))
    mac: Mapped[str] = mapped_column(String(64))
    """HMAC(audit key, prediction id, record MAC): the owner cannot forge an erasure."""


class AuditPending(Base):
    """Committed predictions not sealed yet (filled by a trigger, emptied by the sealer)."""

    __tablename__ = "audit_pending"

    prediction_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
