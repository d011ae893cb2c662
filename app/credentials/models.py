"""Encrypted secrets of installations, the per-company data keys sealing them, key checks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    String,
    UniqueConstraint,
)
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


class DataKey(Base):
    """A company's 256-bit data key, wrapped (AES-256-GCM) by the service key `key_id`.

    Deleting the row shreds every secret sealed under it; the foreign key of stored_secrets
    cascades, so no ciphertext outlives its data key. A new row (new id) is a new key.
    """

    __tablename__ = "data_keys"
    # Ids are never reused (SQLite would reuse the highest after a delete), so a row id names
    # one key for good: a shredded key's id never comes back.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        BigInteger,
        ForeignKey("installations.company_id", ondelete="CASCADE"),
        unique=True,
    )
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StoredSecret(Base):
    """One AES-256-GCM ciphertext, bound to its company and kind.

    Sealed under the company's data key (`data_key_id`), or, for values written before data
    keys existed, directly under the service key `key_id`; exactly one of the two is set.
    """

    __tablename__ = "stored_secrets"
    __table_args__ = (
        UniqueConstraint("company_id", "kind"),
        CheckConstraint("(key_id IS NULL) <> (data_key_id IS NULL)", name="one_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("installations.company_id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(64), index=True)
    data_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("data_keys.id", ondelete="CASCADE"), index=True
    )
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class KeyCheck(Base):
    """A value only the right bytes of service key `key_id` open (AES-256-GCM of a constant).

    Written the first time a key id is seen; a key whose bytes do not open it stops start-up.
    """

    __tablename__ = "key_checks"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary(12))
    check_value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
