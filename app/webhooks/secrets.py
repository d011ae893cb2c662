"""Each installation's webhook secret: made on first use, stored encrypted, sent by Procore in
the `Authorization` header of every delivery, rotated with a grace period for the old one."""

from __future__ import annotations

import secrets as random
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.credentials import service as vault
from app.credentials.models import SecretKind
from app.installations import service as installations
from app.runtime import Runtime
from app.webhooks import repository
from app.webhooks.models import WebhookSubscription

SECRET_PREFIX = "whk_"  # noqa: S105 - the public prefix of generated secrets


def header_value(secret: str) -> str:
    """The `Authorization` value Procore sends with every delivery."""
    return f"Bearer {secret}"


def new_secret() -> str:
    """A long random secret (32 bytes)."""
    return SECRET_PREFIX + random.token_urlsafe(32)


async def ensure_secret(session: AsyncSession, rt: Runtime, company_id: int) -> str:
    """The installation's webhook secret, made on first use."""
    secret = await vault.get_secret(session, rt.keyring, company_id, SecretKind.webhook_secret)
    if secret is None:
        secret = new_secret()
        await vault.put_secret(session, rt.keyring, company_id, SecretKind.webhook_secret, secret)
    return secret


async def accepted_headers(
    session: AsyncSession, rt: Runtime, company_id: int, now: datetime
) -> list[str]:
    """Authorization values a delivery may carry: the secret, and the replaced one in grace."""
    current = await vault.get_secret(session, rt.keyring, company_id, SecretKind.webhook_secret)
    if current is None:
        return []
    values = [header_value(current)]
    row = await repository.subscription(session, company_id)
    if row is not None and row.previous_secret_until and row.previous_secret_until > now:
        previous = await vault.get_secret(
            session, rt.keyring, company_id, SecretKind.webhook_previous_secret
        )
        if previous:
            values.append(header_value(previous))
    return values


async def rotate_secret(session: AsyncSession, rt: Runtime, company_id: int) -> datetime:
    """Replaces the secret; the old one is accepted for the grace period. Returns its end."""
    await installations.require(session, company_id)
    row = await subscription_row(session, company_id)
    old = await ensure_secret(session, rt, company_id)
    await vault.put_secret(session, rt.keyring, company_id, SecretKind.webhook_previous_secret, old)
    await vault.put_secret(session, rt.keyring, company_id, SecretKind.webhook_secret, new_secret())
    now = utcnow()
    row.previous_secret_until = now + timedelta(seconds=rt.settings.webhook_secret_grace_seconds)
    row.secret_changed = True
    row.next_check_at = now
    return row.previous_secret_until


async def subscription_row(session: AsyncSession, company_id: int) -> WebhookSubscription:
    """The company's subscription row, locked (made when it has none)."""
    row = await repository.subscription(session, company_id, for_update=True)
    if row is None:
        row = await repository.add_subscription(session, company_id)
    return row
