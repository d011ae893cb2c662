"""The webhooks domain's rules for the rest of the service: what a run may read and spend,
how fresh an installation is, its webhook settings, and the periodic gauges."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import unit_of_work, utcnow
from app.installations import service as installations
from app.procore import ProcoreCredentials
from app.procore.catalog import STREAMS, Cursor, parse_stream_selection
from app.runs.models import SyncRun
from app.runtime import Runtime
from app.sync.context import Coverage
from app.webhooks import budget, repository, subscriptions, usage_repository
from app.webhooks import secrets as webhook_secrets
from app.webhooks.applier import READ_EVERYTHING
from app.webhooks.metrics import (
    BUDGET_USED,
    BUDGET_USED_BY_COMPANY,
    STREAM_FRESHNESS,
    STREAM_FRESHNESS_BY_COMPANY,
    WEBHOOK_PENDING,
)
from app.webhooks.models import SubscriptionStatus, WebhookSubscription
from app.webhooks.schemas import (
    BudgetView,
    FreshnessView,
    StreamFreshness,
    WebhookSettingsIn,
    WebhooksView,
)


def reconcile_interval(rt: Runtime, row: WebhookSubscription | None) -> int:
    """Seconds between full reads of a covered unit (the installation's, else the default)."""
    if row is not None and row.reconcile_interval_seconds:
        return row.reconcile_interval_seconds
    return rt.settings.reconcile_interval_seconds


def coverage_of(row: WebhookSubscription | None) -> dict[str, datetime]:
    """Covered streams and since when, of an active subscription."""
    if row is None or row.status != SubscriptionStatus.active or not row.covered:
        return {}
    return {stream: datetime.fromisoformat(since) for stream, since in row.covered.items()}


async def run_inputs(
    session: AsyncSession, rt: Runtime, run: SyncRun, creds: ProcoreCredentials
) -> tuple[Coverage | None, int]:
    """What a run may leave to webhooks (coverage) and how many requests it may make."""
    now_budget = await budget.current(session, rt, run.company_id, creds)
    row = await repository.subscription(session, run.company_id)
    since = coverage_of(row)
    coverage = None
    work = run.work
    everything = run.trigger in READ_EVERYTHING or (work is not None and work.everything)
    if since and not everything:
        coverage = Coverage(
            since=since,
            interval=timedelta(seconds=reconcile_interval(rt, row)),
            repair_from=row.repair_from if row is not None else None,
            reconciled_last_hour=now_budget.reconciled,
        )
    return coverage, now_budget.remaining


async def update_settings(
    session: AsyncSession, rt: Runtime, company_id: int, body: WebhookSettingsIn
) -> FreshnessView:
    """Changes an installation's webhook settings."""
    await installations.require(session, company_id)
    row = await repository.subscription(session, company_id, for_update=True)
    if row is None:
        row = await repository.add_subscription(session, company_id)
    row.reconcile_interval_seconds = body.reconcile_interval_seconds
    await session.flush()
    return await freshness(session, rt, company_id)


async def rotate_secret(session: AsyncSession, rt: Runtime, company_id: int) -> datetime:
    """Replaces an installation's webhook secret (Procore's copy follows at once)."""
    return await webhook_secrets.rotate_secret(session, rt, company_id)


def _known_until(
    stream: str, cursor: datetime | None, success: datetime | None, never: int
) -> datetime | None:
    if never:
        return None
    spec = STREAMS.get(stream)
    if spec is not None and spec.cursor == Cursor.updated_at:
        return cursor
    return success


async def freshness(session: AsyncSession, rt: Runtime, company_id: int) -> FreshnessView:
    """How fresh each stream of an installation is, its webhooks and its budget."""
    inst = await installations.require(session, company_id)
    now = utcnow()
    row = await repository.subscription(session, company_id)
    covered = coverage_of(row)
    opened = await repository.open_counts(session, company_id)
    units = {
        stream: (cursor, success, count, no_cursor, no_success)
        for _, stream, cursor, success, count, no_cursor, no_success in (
            await repository.unit_freshness(session, company_id)
        )
    }
    streams: dict[str, StreamFreshness] = {}
    for name in parse_stream_selection(inst.streams):
        cursor, success, count, no_cursor, no_success = units.get(name, (None, None, 0, 0, 0))
        spec = STREAMS[name]
        never = no_cursor if spec.cursor == Cursor.updated_at else no_success
        until = _known_until(name, cursor, success, never) if count else None
        events, oldest = opened.get(name, (0, None))
        streams[name] = StreamFreshness(
            complete_until=until,
            age_seconds=None if until is None else round((now - until).total_seconds(), 1),
            units=count,
            units_never_read=never,
            covered_by_webhooks=name in covered,
            open_events=events,
            oldest_open_event_at=oldest,
        )
    current = await budget.current(session, rt, company_id, now=now)
    latest = await repository.latest_run(session, company_id)
    progress = latest.progress if latest is not None else None
    all_open = [oldest for _, oldest in opened.values() if oldest is not None]
    return FreshnessView(
        company_id=company_id,
        streams=streams,
        webhooks=WebhooksView(
            enabled=rt.settings.public_url is not None,
            status=row.status if row is not None else SubscriptionStatus.pending,
            note=row.note if row is not None else None,
            hook_id=row.hook_id if row is not None else None,
            destination_url=row.destination_url if row is not None else None,
            covered_streams=covered,
            uncovered_streams=list(row.uncovered or []) if row is not None else [],
            checked_at=row.checked_at if row is not None else None,
            next_check_at=row.next_check_at if row is not None else None,
            reconcile_interval_seconds=reconcile_interval(rt, row),
            repair_from=row.repair_from if row is not None else None,
            open_events=sum(count for count, _ in opened.values()),
            oldest_open_event_at=min(all_open) if all_open else None,
        ),
        budget=BudgetView(
            hourly_limit=current.hourly_limit,
            limit_source=current.source,
            share=current.share,
            planned=current.planned,
            used_last_hour=current.used,
            remaining=current.remaining,
            reconciled_units_last_hour=current.reconciled,
        ),
        last_deferred_units=progress.deferred_units if progress else 0,
        last_deferred_reason=progress.deferred_reason if progress else None,
    )


async def refresh_gauges(rt: Runtime) -> None:
    """Open events, subscriptions, stream freshness and budget use (worst installation, and per
    installation with CONNECTOR_METRICS_COMPANY_LABELS)."""
    now = utcnow()
    by_company = rt.settings.metrics_company_labels
    async with unit_of_work(rt.sessions) as session:
        WEBHOOK_PENDING.set(await repository.open_total(session))
        await subscriptions.count_statuses(session)
        rows = await repository.unit_freshness(session)
        used = await usage_repository.usage_by_company(session, budget.minute_of(now - budget.HOUR))
        limits = {row.company_id: row for row in await usage_repository.budgets(session)}
    worst: dict[str, float] = {}
    STREAM_FRESHNESS_BY_COMPANY.clear()
    for company_id, stream, cursor, success, _count, no_cursor, no_success in rows:
        spec = STREAMS.get(stream)
        never = no_cursor if spec is not None and spec.cursor == Cursor.updated_at else no_success
        until = _known_until(stream, cursor, success, never)
        if until is None:
            continue
        age = max(0.0, (now - until).total_seconds())
        worst[stream] = max(worst.get(stream, 0.0), age)
        if by_company:
            STREAM_FRESHNESS_BY_COMPANY.labels(str(company_id), stream).set(age)
    STREAM_FRESHNESS.clear()
    for stream, age in worst.items():
        STREAM_FRESHNESS.labels(stream).set(age)
    share = rt.settings.request_budget_share
    ratio = 0.0
    BUDGET_USED_BY_COMPANY.clear()
    for company_id, requests in used.items():
        row = limits.get(company_id)
        limit = row.hourly_limit if row and row.source == budget.LEARNED else None
        planned = int((limit or rt.settings.procore_hourly_limit) * share) or 1
        ratio = max(ratio, requests / planned)
        if by_company:
            BUDGET_USED_BY_COMPANY.labels(str(company_id)).set(requests / planned)
    BUDGET_USED.set(ratio)


async def prune(rt: Runtime) -> None:
    """Forgets settled events past their retention and request counts past the hour."""
    now = utcnow()
    async with unit_of_work(rt.sessions) as session:
        retention = timedelta(seconds=rt.settings.webhook_inbox_retention_seconds)
        await repository.prune_events(session, now - retention)
        await usage_repository.prune_usage(session, now - 2 * budget.HOUR)
