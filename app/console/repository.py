"""Queries of the console: its sessions table, and read-only views across the ledger.

The console writes only `console_sessions`; everything else it changes goes through the
owning domains' services (via `app.admin.actions`). The reads here join tables for pages that
must stay fast at thousands of installations.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.models import ConsoleSession
from app.installations.models import Installation
from app.runs.models import RunStatus, SyncRun


async def get_session(session: AsyncSession, id_hash: str) -> ConsoleSession | None:
    """A console session by the hash of its cookie."""
    return await session.get(ConsoleSession, id_hash)


async def add_session(session: AsyncSession, row: ConsoleSession) -> None:
    """Stores a new console session."""
    session.add(row)
    await session.flush()


async def delete_session(session: AsyncSession, id_hash: str) -> None:
    """Deletes one console session."""
    await session.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == id_hash))


async def delete_expired(session: AsyncSession, now: datetime) -> int:
    """Deletes sessions past their absolute expiry; returns how many."""
    result = await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    return int(result.rowcount)  # type: ignore[attr-defined]


def escape_like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (escape character `\\`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def installations_page(
    session: AsyncSession,
    *,
    search: str | None,
    status: str | None,
    paused: bool | None,
    last_result: str | None,
    after: int | None,
    limit: int,
) -> list[tuple[Installation, SyncRun | None]]:
    """A page of installations by company id, each with its last run (one query)."""
    query = (
        select(Installation, SyncRun)
        .outerjoin(SyncRun, SyncRun.id == Installation.last_run_id)
        .order_by(Installation.company_id)
        .limit(limit)
    )
    if search:
        pattern = f"%{escape_like(search.lower())}%"
        matches = [
            func.lower(Installation.company_name).like(pattern, escape="\\"),
            cast(Installation.company_id, String).like(pattern, escape="\\"),
        ]
        query = query.where(or_(*matches))
    if status:
        query = query.where(Installation.status == status)
    if paused is not None:
        query = query.where(Installation.paused.is_(paused))
    if last_result == "none":
        query = query.where(Installation.last_run_id.is_(None))
    elif last_result:
        query = query.where(SyncRun.status == last_result)
    if after is not None:
        query = query.where(Installation.company_id > after)
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def status_counts(session: AsyncSession) -> dict[str, int]:
    """How many installations are in each status."""
    rows = await session.execute(
        select(Installation.status, func.count()).group_by(Installation.status)
    )
    return {str(status): int(count) for status, count in rows.all()}


async def paused_count(session: AsyncSession) -> int:
    """How many installations are paused."""
    return int(await session.scalar(select(func.count()).where(Installation.paused.is_(True))) or 0)


async def last_successes(session: AsyncSession, company_ids: Sequence[int]) -> dict[int, Any]:
    """End of the last successful run per company (absent before the first)."""
    if not company_ids:
        return {}
    rows = await session.execute(
        select(SyncRun.company_id, func.max(SyncRun.finished_at))
        .where(SyncRun.company_id.in_(list(company_ids)), SyncRun.status == RunStatus.succeeded)
        .group_by(SyncRun.company_id)
    )
    return {int(company): at for company, at in rows.all() if at is not None}


async def company_names(session: AsyncSession, company_ids: Sequence[int]) -> dict[int, str]:
    """Company names by id (for run and audit listings)."""
    if not company_ids:
        return {}
    rows = await session.execute(
        select(Installation.company_id, Installation.company_name).where(
            Installation.company_id.in_(list(set(company_ids)))
        )
    )
    return {int(company): name for company, name in rows.all() if name}


async def running_runs(session: AsyncSession) -> Sequence[SyncRun]:
    """Runs held by a worker now, with their leases."""
    return (
        await session.scalars(
            select(SyncRun)
            .where(SyncRun.status == RunStatus.running)
            .order_by(SyncRun.lease_owner, SyncRun.started_at)
        )
    ).all()


async def runs_since(session: AsyncSession, since: datetime) -> Sequence[SyncRun]:
    """Runs that were running or ended since `since` (requests in the last hour)."""
    return (
        await session.scalars(
            select(SyncRun).where(
                or_(SyncRun.status == RunStatus.running, SyncRun.finished_at >= since)
            )
        )
    ).all()
