"""Queries of the webhooks tables: subscriptions, the event inbox, request usage and budgets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.installations.models import Installation, InstallationStatus
from app.runs.models import ACTIVE_STATUSES, StreamState, SyncRun
from app.webhooks.models import (
    SubscriptionStatus,
    WebhookEvent,
    WebhookSubscription,
)


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """The dialect's INSERT (both know ON CONFLICT)."""
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(table)
    return sqlite_insert(table)


# ---- subscriptions --------------------------------------------------------------------------


async def subscription(
    session: AsyncSession, company_id: int, *, for_update: bool = False
) -> WebhookSubscription | None:
    """One installation's subscription row."""
    query = select(WebhookSubscription).where(WebhookSubscription.company_id == company_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def subscriptions(
    session: AsyncSession, company_ids: Sequence[int]
) -> dict[int, WebhookSubscription]:
    """Subscription rows of several installations, by company id."""
    if not company_ids:
        return {}
    rows = await session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.company_id.in_(list(company_ids)))
    )
    return {row.company_id: row for row in rows}


async def due_for_check(
    session: AsyncSession, now: datetime, *, enabled: bool, limit: int
) -> list[int]:
    """Installations whose subscription needs reconciling with Procore now.

    With webhooks enabled: active installations without a row, with another stream selection
    than their row was made for, or whose next check is due; and, either way, rows that still
    name a hook of an installation that is gone (or of any installation when webhooks are off).
    """
    sub = WebhookSubscription
    inst = Installation
    gone = inst.status == InstallationStatus.uninstalled
    query = (
        select(inst.company_id)
        .outerjoin(sub, sub.company_id == inst.company_id)
        .order_by(sub.next_check_at.is_not(None), sub.next_check_at, inst.company_id)
        .limit(limit)
    )
    if enabled:
        live = (inst.status == InstallationStatus.active) & (
            sub.company_id.is_(None)
            | (sub.streams.is_distinct_from(inst.streams))
            | (sub.next_check_at <= now)
        )
        query = query.where(live | (gone & sub.hook_id.is_not(None)))
    else:
        query = query.where(sub.hook_id.is_not(None))
    return list(await session.scalars(query))


async def add_subscription(session: AsyncSession, company_id: int) -> WebhookSubscription:
    """A fresh pending row (the caller holds the installation's lock)."""
    row = WebhookSubscription(
        company_id=company_id,
        status=SubscriptionStatus.pending,
        covered={},
        uncovered=[],
        triggers=0,
    )
    session.add(row)
    await session.flush()
    return row


async def status_counts(session: AsyncSession) -> dict[str, int]:
    """Subscriptions per status."""
    query = select(WebhookSubscription.status, func.count()).group_by(WebhookSubscription.status)
    return {str(status): int(count) for status, count in (await session.execute(query)).all()}


# ---- the event inbox --------------------------------------------------------------------------


_INSERT_EVENTS: dict[str, Any] = {}


def _insert_events_statement(session: AsyncSession) -> Any:
    """One compiled-once INSERT ... ON CONFLICT DO NOTHING RETURNING per dialect (executed with
    a list of rows, SQLAlchemy sends them as one multi-row statement)."""
    dialect = session.get_bind().dialect.name
    statement = _INSERT_EVENTS.get(dialect)
    if statement is None:
        table = WebhookEvent.__table__
        statement = (
            dialect_insert(session, table)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(table.c.dedupe_key)
        )
        _INSERT_EVENTS[dialect] = statement
    return statement


async def insert_events(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Stores events, skipping any whose dedupe key is stored already; returns the new keys."""
    if not rows:
        return set()
    connection = await session.connection()
    result = await connection.execute(_insert_events_statement(session), rows)
    return {str(key) for key in result.scalars()}


async def pending_companies(
    session: AsyncSession, limit: int
) -> list[tuple[int, datetime, datetime]]:
    """Companies with events no run has taken yet: when the oldest and the newest arrived."""
    query = (
        select(
            WebhookEvent.company_id,
            func.min(WebhookEvent.received_at),
            func.max(WebhookEvent.received_at),
        )
        .where(WebhookEvent.applied_at.is_(None), WebhookEvent.run_id.is_(None))
        .group_by(WebhookEvent.company_id)
        .order_by(func.min(WebhookEvent.received_at))
        .limit(limit)
    )
    return [
        (int(cid), aware(oldest), aware(newest))
        for cid, oldest, newest in (await session.execute(query)).all()
    ]


async def pending_events(session: AsyncSession, company_id: int, limit: int) -> list[WebhookEvent]:
    """The oldest events of a company no run has taken yet."""
    query = (
        select(WebhookEvent)
        .where(
            WebhookEvent.company_id == company_id,
            WebhookEvent.applied_at.is_(None),
            WebhookEvent.run_id.is_(None),
        )
        .order_by(WebhookEvent.id)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def has_pending(session: AsyncSession, company_id: int) -> bool:
    """Whether events of this company wait for a run."""
    query = (
        select(WebhookEvent.id)
        .where(
            WebhookEvent.company_id == company_id,
            WebhookEvent.applied_at.is_(None),
            WebhookEvent.run_id.is_(None),
        )
        .limit(1)
    )
    return await session.scalar(query) is not None


async def assign(session: AsyncSession, event_ids: list[int], run_id: str) -> int:
    """Hands pending events to a run; returns how many it took."""
    result = await session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id.in_(event_ids),
            WebhookEvent.run_id.is_(None),
            WebhookEvent.applied_at.is_(None),
        )
        .values(run_id=run_id)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def ended_runs_with_events(session: AsyncSession, limit: int) -> list[SyncRun]:
    """Runs that ended while events were assigned to them (their events await settling)."""
    assigned = (
        select(WebhookEvent.run_id)
        .where(WebhookEvent.applied_at.is_(None), WebhookEvent.run_id.is_not(None))
        .distinct()
        .subquery()
    )
    query = (
        select(SyncRun)
        .join(assigned, assigned.c.run_id == SyncRun.id)
        .where(SyncRun.status.not_in(ACTIVE_STATUSES))
        .limit(limit)
    )
    return list(await session.scalars(query))


async def orphaned_run_ids(session: AsyncSession, limit: int) -> list[str]:
    """Run ids events are assigned to that no run row has (a run removed by retention)."""
    query = (
        select(WebhookEvent.run_id)
        .outerjoin(SyncRun, SyncRun.id == WebhookEvent.run_id)
        .where(
            WebhookEvent.applied_at.is_(None),
            WebhookEvent.run_id.is_not(None),
            SyncRun.id.is_(None),
        )
        .distinct()
        .limit(limit)
    )
    return [str(run_id) for run_id in await session.scalars(query)]


async def events_of_run(session: AsyncSession, run_id: str) -> list[WebhookEvent]:
    """The unsettled events a run took."""
    query = select(WebhookEvent).where(
        WebhookEvent.run_id == run_id, WebhookEvent.applied_at.is_(None)
    )
    return list(await session.scalars(query))


async def release_run(session: AsyncSession, run_id: str) -> None:
    """Gives the unsettled events of a vanished run back to the inbox."""
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.run_id == run_id, WebhookEvent.applied_at.is_(None))
        .values(run_id=None)
        .execution_options(synchronize_session=False)
    )


async def close_company_events(
    session: AsyncSession, company_id: int, outcome: str, now: datetime
) -> int:
    """Settles every open event of a company without applying it (uninstalled)."""
    result = await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.company_id == company_id, WebhookEvent.applied_at.is_(None))
        .values(applied_at=now, outcome=outcome, run_id=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def open_counts(
    session: AsyncSession, company_id: int
) -> dict[str, tuple[int, datetime | None]]:
    """Per stream: how many events of a company are not applied yet, and the oldest one's time."""
    query = (
        select(WebhookEvent.stream, func.count(), func.min(WebhookEvent.occurred_at))
        .where(WebhookEvent.company_id == company_id, WebhookEvent.applied_at.is_(None))
        .group_by(WebhookEvent.stream)
    )
    return {
        str(stream): (int(count), None if oldest is None else aware(oldest))
        for stream, count, oldest in (await session.execute(query)).all()
    }


async def open_total(session: AsyncSession) -> int:
    """Events stored and not applied yet, every company."""
    query = select(func.count()).where(WebhookEvent.applied_at.is_(None))
    return int(await session.scalar(query) or 0)


async def prune_events(session: AsyncSession, before: datetime) -> int:
    """Forgets settled events received before `before` (their dedupe keys go with them)."""
    result = await session.execute(
        delete(WebhookEvent).where(
            WebhookEvent.applied_at.is_not(None), WebhookEvent.received_at < before
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def finished_since(session: AsyncSession, since: datetime) -> Sequence[SyncRun]:
    """Runs that finished after `since`, oldest first."""
    query = (
        select(SyncRun)
        .where(SyncRun.finished_at > since, SyncRun.status.not_in(ACTIVE_STATUSES))
        .order_by(SyncRun.finished_at)
        .limit(1000)
    )
    return (await session.scalars(query)).all()


async def latest_run(session: AsyncSession, company_id: int) -> SyncRun | None:
    """A company's newest run."""
    runs = await recent_runs(session, company_id, 1)
    return runs[0] if runs else None


async def recent_runs(session: AsyncSession, company_id: int, limit: int) -> Sequence[SyncRun]:
    """A company's newest runs, newest first."""
    query = (
        select(SyncRun)
        .where(SyncRun.company_id == company_id)
        .order_by(SyncRun.queued_at.desc(), SyncRun.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def unit_freshness(
    session: AsyncSession, company_id: int | None = None
) -> list[tuple[int, str, datetime | None, datetime | None, int, int, int]]:
    """Per (company, stream) of stream_states: the oldest cursor and last success, the units,
    and how many units have no cursor and no success yet."""
    state = StreamState
    query = select(
        state.company_id,
        state.stream,
        func.min(state.cursor),
        func.min(state.last_success_at),
        func.count(),
        func.count() - func.count(state.cursor),
        func.count() - func.count(state.last_success_at),
    ).group_by(state.company_id, state.stream)
    if company_id is not None:
        query = query.where(state.company_id == company_id)
    return [
        (
            int(cid),
            str(stream),
            None if cursor is None else aware(cursor),
            None if success is None else aware(success),
            int(units),
            int(no_cursor),
            int(no_success),
        )
        for cid, stream, cursor, success, units, no_cursor, no_success in (
            await session.execute(query)
        ).all()
    ]


def aware(value: Any) -> datetime:
    """Aggregates lose the column's UTC type on SQLite; the stored values are UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
