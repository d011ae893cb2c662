"""Queries of the audit_events table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent


async def add(session: AsyncSession, event: AuditEvent) -> AuditEvent:
    """Stores one event in the caller's transaction."""
    session.add(event)
    await session.flush()
    return event


async def page(
    session: AsyncSession,
    *,
    action: str | None,
    actor: str | None,
    company_id: int | None,
    before_id: int | None,
    limit: int,
) -> Sequence[AuditEvent]:
    """Events newest first, filtered, keyset-paged on the id."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEvent.action == action)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if company_id is not None:
        query = query.where(AuditEvent.company_id == company_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return (await session.scalars(query)).all()
