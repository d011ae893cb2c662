"""Console sessions: signing in with an admin token, the session cookie, CSRF, expiry.

The cookie holds a random value; the database keeps only its SHA-256, the name of the token
that signed in and that token's fingerprint, so a token removed from or changed in
CONNECTOR_ADMIN_TOKENS ends its sessions at once. Each session has its own CSRF token, sent
back by every form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.auth import Principal
from app.console import repository
from app.console.models import ConsoleSession
from app.core.admin_tokens import AdminToken, find_token
from app.core.database import utcnow
from app.core.settings import Settings

COOKIE = "connector_session"
SIGN_IN_COOKIE = "connector_sign_in"  # the CSRF value of the sign-in form (double submit)
COOKIE_PATH = "/console"
# last_seen_at is written at most this often, not on every page.
TOUCH_EVERY = timedelta(seconds=60)


class SessionState(StrEnum):
    """Why a cookie does not sign anybody in."""

    missing = "missing"
    expired = "expired"


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, and the CSRF token its forms carry."""

    principal: Principal
    csrf_token: str


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def fingerprint(token: AdminToken) -> str:
    """A one-way fingerprint of a token, to notice it was replaced."""
    return _hash(token.token.get_secret_value())


def check_token(settings: Settings, presented: str) -> AdminToken | None:
    """The admin token typed into the sign-in form, if it is one."""
    presented = presented.strip()
    if not presented:
        return None
    return find_token(presented, settings.admin_tokens)


async def start(session: AsyncSession, settings: Settings, token: AdminToken) -> str:
    """Opens a session for a token; returns the cookie value (shown to nobody else)."""
    value = secrets.token_urlsafe(32)
    now = utcnow()
    await repository.add_session(
        session,
        ConsoleSession(
            id_hash=_hash(value),
            token_name=token.name,
            token_fingerprint=fingerprint(token),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=settings.console_session_seconds),
        ),
    )
    return value


async def resume(
    session: AsyncSession, settings: Settings, cookie: str | None
) -> SignedIn | SessionState:
    """The session of a cookie, or why there is none (expired, idle, token gone)."""
    if not cookie:
        return SessionState.missing
    row = await repository.get_session(session, _hash(cookie))
    if row is None:
        return SessionState.expired
    now = utcnow()
    token = next((t for t in settings.admin_tokens if t.name == row.token_name), None)
    idle = now - row.last_seen_at > timedelta(seconds=settings.console_idle_seconds)
    replaced = token is None or not hmac.compare_digest(fingerprint(token), row.token_fingerprint)
    if row.expires_at <= now or idle or replaced:
        return SessionState.expired  # the caller deletes it (`end`) outside this transaction
    assert token is not None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
    return SignedIn(Principal(token.name, token.role), row.csrf_token)


async def end(session: AsyncSession, cookie: str | None) -> None:
    """Signs out: the session row is deleted, so the cookie is worthless even if kept."""
    if cookie:
        await repository.delete_session(session, _hash(cookie))


async def forget_expired(session: AsyncSession) -> int:
    """Deletes sessions past their absolute expiry; returns how many."""
    return await repository.delete_expired(session, utcnow())


def csrf_matches(expected: str, presented: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token."""
    return bool(presented) and hmac.compare_digest(expected.encode(), str(presented).encode())
