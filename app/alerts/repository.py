"""Queries of alert_incidents, and the read of recently changed installations for the sweep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.models import AlertIncident
from app.core.database import utcnow
from app.installations.models import Installation, InstallationStatus


async def open_incident(
    session: AsyncSession, kind: str, company_id: int, summary: str
) -> AlertIncident | None:
    """Opens an incident; None when one of this kind is already open for the company."""
    found = await current(session, kind, company_id)
    if found is not None:
        return None
    incident = AlertIncident(kind=kind, company_id=company_id, summary=summary[:4000])
    try:
        async with session.begin_nested():
            session.add(incident)
            await session.flush()
    except IntegrityError:  # another process opened it at the same moment
        return None
    return incident


async def current(session: AsyncSession, kind: str, company_id: int) -> AlertIncident | None:
    """The open incident of a kind for a company, if any."""
    return await session.scalar(
        select(AlertIncident).where(
            AlertIncident.kind == kind,
            AlertIncident.company_id == company_id,
            AlertIncident.resolved_at.is_(None),
        )
    )


async def resolve(session: AsyncSession, kind: str, company_id: int) -> bool:
    """Closes the open incident of a kind for a company; True if there was one."""
    result = await session.execute(
        update(AlertIncident)
        .where(
            AlertIncident.kind == kind,
            AlertIncident.company_id == company_id,
            AlertIncident.resolved_at.is_(None),
        )
        .values(resolved_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def undelivered(session: AsyncSession, company_ids: Sequence[int]) -> list[AlertIncident]:
    """Open incidents of these companies nobody has sent yet."""
    if not company_ids:
        return []
    rows = await session.scalars(
        select(AlertIncident).where(
            AlertIncident.company_id.in_(list(company_ids)),
            AlertIncident.resolved_at.is_(None),
            AlertIncident.notified_at.is_(None),
        )
    )
    return list(rows)


async def claim(session: AsyncSession, incident_id: int) -> bool:
    """Takes an incident for sending; only one process wins (compare-and-set)."""
    result = await session.execute(
        update(AlertIncident)
        .where(AlertIncident.id == incident_id, AlertIncident.notified_at.is_(None))
        .values(notified_at=utcnow(), delivery_attempts=AlertIncident.delivery_attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def unclaim(session: AsyncSession, incident_id: int) -> None:
    """Every target refused: leave the incident for the next evaluation to send."""
    await session.execute(
        update(AlertIncident)
        .where(AlertIncident.id == incident_id)
        .values(notified_at=None)
        .execution_options(synchronize_session=False)
    )


async def open_for(session: AsyncSession, kinds: Sequence[str]) -> set[int]:
    """Companies with an open incident of one of these kinds."""
    rows = await session.scalars(
        select(AlertIncident.company_id).where(
            AlertIncident.kind.in_(list(kinds)), AlertIncident.resolved_at.is_(None)
        )
    )
    return set(rows)


async def recently_unhealthy(session: AsyncSession, since: datetime) -> set[int]:
    """Installations changed since `since` that are not active (read-only, for the sweep)."""
    rows = await session.scalars(
        select(Installation.company_id).where(
            Installation.status != InstallationStatus.active, Installation.updated_at >= since
        )
    )
    return set(rows)


async def latest_open(session: AsyncSession, limit: int) -> list[AlertIncident]:
    """Open incidents, newest first."""
    rows = await session.scalars(
        select(AlertIncident)
        .where(AlertIncident.resolved_at.is_(None))
        .order_by(AlertIncident.id.desc())
        .limit(limit)
    )
    return list(rows)
