"""Encrypted secrets of installations (client secret, destination URL, signing secret)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class SecretKind(StrEnum):
    """What a stored secret is; part of the associated data that binds the ciphertext."""

    client_secret = "client_secret"  # noqa: S105
    destination_url = "destination_url"
    destination_signing_secret = "destination_signing_secret"  # noqa: S105
    destination_previous_signing_secret = "destination_previous_signing_secret"  # noqa: S105
    destination_history = "destination_history"  # the destinations written to, for purge
    webhook_secret = "webhook_secret"  # noqa: S105 - the header Procore's deliveries carry
    webhook_previous_secret = "webhook_previous_secret"  # noqa: S105 - accepted until a deadline


class StoredSecret(Base):
    """One AES-256-GCM ciphertext, bound to its company and kind, with the id of its key."""

    __tablename__ = "stored_secrets"
    __table_args__ = (UniqueConstraint("company_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("installations.company_id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
