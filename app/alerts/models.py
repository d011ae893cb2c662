"""The alert_incidents table: one row per incident, open until its condition clears."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class AlertIncident(Base):
    """Something wrong with one installation that people were (or are to be) told about once."""

    __tablename__ = "alert_incidents"
    __table_args__ = (
        # At most one open incident of a kind per installation: "once per incident".
        Index(
            "uq_alert_incidents_open",
            "kind",
            "company_id",
            unique=True,
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    company_id: Mapped[int] = mapped_column(BigInteger)
    summary: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    # Set when a sender claims the incident; cleared again if every target refused it.
    notified_at: Mapped[datetime | None]
    delivery_attempts: Mapped[int] = mapped_column(Integer, default=0)
