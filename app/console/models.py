"""The console_sessions table: signed-in browsers, by a hash of their cookie."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class ConsoleSession(Base):
    """One sign-in: which token (by name and fingerprint), its CSRF token, and its clock."""

    __tablename__ = "console_sessions"

    # SHA-256 of the cookie value: a copy of this table signs nobody in.
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_name: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the token signed in with: a token replaced under the same name ends its sessions.
    token_fingerprint: Mapped[str] = mapped_column(String(64))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
