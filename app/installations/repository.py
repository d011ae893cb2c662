"""Queries of the installations and callback_events tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.installations.models import (
    CallbackEvent,
    DiscoveryState,
    Installation,
    InstallationStatus,
)
from app.runs.models import RunStatus, SyncRun


async def get(
    session: AsyncSession, company_id: int, *, for_update: bool = False
) -> Installation | None:
    """Returns one installation by company id."""
    query = select(Installation).where(Installation.company_id == company_id)
    if for_update:
        # Re-read under the lock: a row loaded earlier in this session may be stale.
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def list_page(
    session: AsyncSession,
    *,
    status: str | None,
    after: int | None,
    limit: int,
    paused: bool | None = None,
) -> Sequence[Installation]:
    """Installations ordered by company id, keyset-paged."""
    query = select(Installation).order_by(Installation.company_id).limit(limit)
    if status:
        query = query.where(Installation.status == status)
    if paused is not None:
        query = query.where(Installation.paused.is_(paused))
    if after is not None:
        query = query.where(Installation.company_id > after)
    return (await session.scalars(query)).all()


async def all_installations(session: AsyncSession) -> Sequence[Installation]:
    """Every installation, uninstalled ones included."""
    return (await session.scalars(select(Installation).order_by(Installation.company_id))).all()


async def active_company_ids(session: AsyncSession) -> set[int]:
    """Company ids of installations that are not uninstalled."""
    rows = await session.scalars(
        select(Installation.company_id).where(Installation.status != InstallationStatus.uninstalled)
    )
    return set(rows)


async def get_callback(session: AsyncSession, webhook_id: str) -> CallbackEvent | None:
    """A callback already processed under this webhook-id."""
    return await session.get(CallbackEvent, webhook_id)


async def lock_due(session: AsyncSession, now: datetime, limit: int) -> list[Installation]:
    """Active, unpaused installations whose time has come, locked for this scheduler.

    On PostgreSQL, `SKIP LOCKED` lets several worker processes tick at once without waiting
    on each other or queueing twice; SQLite has one writer at a time and ignores the clause.
    """
    query = (
        select(Installation)
        .where(
            Installation.status == InstallationStatus.active,
            Installation.paused.is_(False),
            Installation.next_run_at.is_not(None),
            Installation.next_run_at <= now,
        )
        .order_by(Installation.next_run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())


async def freshness(
    session: AsyncSession,
) -> list[tuple[int, str, datetime, datetime | None, Any]]:
    """Per active, unpaused installation: company id, schedule, creation time, next run time,
    and the end of its last successful run (None before the first)."""
    last_success = (
        select(SyncRun.company_id, func.max(SyncRun.finished_at).label("at"))
        .where(SyncRun.status == RunStatus.succeeded)
        .group_by(SyncRun.company_id)
        .subquery()
    )
    query = (
        select(
            Installation.company_id,
            Installation.schedule,
            Installation.created_at,
            Installation.next_run_at,
            last_success.c.at,
        )
        .outerjoin(last_success, last_success.c.company_id == Installation.company_id)
        .where(Installation.status == InstallationStatus.active, Installation.paused.is_(False))
    )
    return [(r[0], r[1], r[2], r[3], r[4]) for r in (await session.execute(query)).all()]


DISCOVERY_ROW = 1


async def discovery_state(session: AsyncSession, *, for_update: bool = False) -> DiscoveryState:
    """The one discovery row, created on first use."""
    query = select(DiscoveryState).where(DiscoveryState.id == DISCOVERY_ROW)
    if for_update:
        query = query.with_for_update()
    row = await session.scalar(query)
    if row is None:
        row = DiscoveryState(id=DISCOVERY_ROW, listed=0)
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:  # another process made it meanwhile
            found = await session.scalar(query)
            assert found is not None
            return found
    return row


async def smallest_active_app_company_id(session: AsyncSession, environment: str) -> int | None:
    """The smallest company id of an active installation on the app's own credentials."""
    return await session.scalar(
        select(func.min(Installation.company_id)).where(
            Installation.status == InstallationStatus.active,
            Installation.environment == environment,
            Installation.client_id.is_(None),
        )
    )
