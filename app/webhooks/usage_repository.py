"""Request usage per company and minute, and each installation's learned budget (the
`request_usage` and `request_budgets` tables)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.webhooks.models import RequestBudget, RequestUsage
from app.webhooks.repository import aware, dialect_insert


async def add_usage(
    session: AsyncSession, company_id: int, minute: datetime, requests: int, reconciled: int
) -> None:
    """Adds requests (and reconciled units) to a company's minute."""
    statement = dialect_insert(session, RequestUsage).values(
        company_id=company_id, minute=minute, requests=requests, reconciled=reconciled
    )
    statement = statement.on_conflict_do_update(
        index_elements=["company_id", "minute"],
        set_={
            "requests": RequestUsage.requests + statement.excluded.requests,
            "reconciled": RequestUsage.reconciled + statement.excluded.reconciled,
        },
    )
    await session.execute(statement)


async def usage_since(session: AsyncSession, company_id: int, since: datetime) -> tuple[int, int]:
    """(requests, reconciled units) of a company from `since` on."""
    query = select(
        func.coalesce(func.sum(RequestUsage.requests), 0),
        func.coalesce(func.sum(RequestUsage.reconciled), 0),
    ).where(RequestUsage.company_id == company_id, RequestUsage.minute >= since)
    requests, reconciled = (await session.execute(query)).one()
    return int(requests), int(reconciled)


async def usage_by_company(session: AsyncSession, since: datetime) -> dict[int, int]:
    """Requests per company from `since` on."""
    query = (
        select(RequestUsage.company_id, func.sum(RequestUsage.requests))
        .where(RequestUsage.minute >= since)
        .group_by(RequestUsage.company_id)
    )
    return {int(cid): int(total or 0) for cid, total in (await session.execute(query)).all()}


async def oldest_usage_minute(
    session: AsyncSession, company_id: int, since: datetime
) -> datetime | None:
    """The earliest minute with requests from `since` on."""
    query = select(func.min(RequestUsage.minute)).where(
        RequestUsage.company_id == company_id,
        RequestUsage.minute >= since,
        RequestUsage.requests > 0,
    )
    value = await session.scalar(query)
    return None if value is None else aware(value)


async def prune_usage(session: AsyncSession, before: datetime) -> None:
    """Forgets minutes older than `before`."""
    await session.execute(delete(RequestUsage).where(RequestUsage.minute < before))


async def budget(session: AsyncSession, company_id: int) -> RequestBudget | None:
    """A company's learned hourly limit, if any."""
    return await session.get(RequestBudget, company_id)


async def budgets(session: AsyncSession) -> Sequence[RequestBudget]:
    """Every budget row."""
    return (await session.scalars(select(RequestBudget))).all()


async def deferred_budgets(session: AsyncSession) -> Sequence[RequestBudget]:
    """Budgets whose last run left units for later."""
    query = select(RequestBudget).where(RequestBudget.deferred_run_id.is_not(None))
    return (await session.scalars(query)).all()


async def save_budget(
    session: AsyncSession, company_id: int, *, hourly_limit: int, source: str, now: datetime
) -> RequestBudget:
    """Creates or updates a company's budget row."""
    row: RequestBudget | None = await session.get(RequestBudget, company_id)
    if row is None:
        statement = (
            dialect_insert(session, RequestBudget)
            .values(company_id=company_id, hourly_limit=hourly_limit, source=source, learned_at=now)
            .on_conflict_do_nothing(index_elements=["company_id"])
        )
        await session.execute(statement)
        row = await session.get(RequestBudget, company_id, populate_existing=True)
        assert row is not None
    if row.hourly_limit != hourly_limit or row.source != source:
        row.hourly_limit, row.source, row.learned_at = hourly_limit, source, now
    return row


async def clear_deferred(session: AsyncSession, company_id: int) -> None:
    """The continuation of a company's deferred units was queued (or is not needed)."""
    await session.execute(
        update(RequestBudget)
        .where(RequestBudget.company_id == company_id)
        .values(deferred_run_id=None)
        .execution_options(synchronize_session=False)
    )
