"""Queries of the installations and callback_events tables."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.installations.models import CallbackEvent, Installation, InstallationStatus


async def get(
    session: AsyncSession, company_id: int, *, for_update: bool = False
) -> Installation | None:
    """Returns one installation by company id."""
    query = select(Installation).where(Installation.company_id == company_id)
    if for_update:
        query = query.with_for_update()
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
