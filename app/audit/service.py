"""Recording and listing the audit trail; values are scrubbed of secrets on the way in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.audit.models import AuditEvent
from app.audit.schemas import Action, Actor, AuditEventView
from app.core.logging import scrub_text

REDACTED = "[redacted]"
# Field names whose values are secrets whatever their content.
_SECRET_FIELD = re.compile(r"(secret|token|password|credential|key)", re.IGNORECASE)
_SHOWN_FIELDS = {"client_id", "key_id"}


def redact(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy without secrets: secret-named fields hidden, URL passwords and bearers scrubbed.

    Callers pass destination URLs already redacted by their own domain's rules; this is the
    second line of defence for anything else.
    """
    if values is None:
        return None
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if _SECRET_FIELD.search(name) and name not in _SHOWN_FIELDS:
            clean[name] = REDACTED if value is not None else None
        elif isinstance(value, str):
            clean[name] = scrub_text(value)
        elif isinstance(value, dict):
            clean[name] = redact(value)
        else:
            clean[name] = value
    return clean


async def record(
    session: AsyncSession,
    actor: Actor,
    action: Action,
    *,
    target: str | None = None,
    company_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Adds one entry to the trail, in the transaction of the change it describes."""
    event = AuditEvent(
        actor=actor.name[:64],
        role=actor.role,
        source=actor.source.value,
        ip=(actor.ip or None) and str(actor.ip)[:64],
        action=action.value,
        target=target[:128] if target else None,
        company_id=company_id,
        before=redact(before),
        after=redact(after),
    )
    return await repository.add(session, event)


async def listing(
    session: AsyncSession,
    *,
    action: str | None = None,
    actor: str | None = None,
    company_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[AuditEventView]:
    """A page of the trail, newest first."""
    rows = await repository.page(
        session,
        action=action,
        actor=actor,
        company_id=company_id,
        before_id=before_id,
        limit=limit,
    )
    return [view(row) for row in rows]


def view(row: AuditEvent) -> AuditEventView:
    """The API shape of one stored event."""
    return AuditEventView(
        id=row.id,
        recorded_at=row.recorded_at,
        actor=row.actor,
        role=row.role,
        source=row.source,
        ip=row.ip,
        action=row.action,
        target=row.target,
        company_id=row.company_id,
        before=row.before,
        after=row.after,
    )
