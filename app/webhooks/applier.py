"""Turning stored events into runs, and settling them once their run ended.

Events are coalesced per company over CONNECTOR_WEBHOOK_COALESCE_SECONDS (counted from the
oldest waiting event) and queued as one run with trigger `webhook` through the normal run
queue, carrying its (stream, project) units: the queue's one-active-run-per-company rule means
events and scheduled runs never write the same unit at once. While a run is going, events
wait in the inbox and go to the next run; a queued run takes them in (see queue.enqueue).
When a run ends its events are settled from what it recorded: applied, read again once when
the read did not return the record, handed back when the unit was left for later, and given
up (left to reconciliation) after repeated failures.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import unit_of_work, utcnow
from app.core.logging import get_logger
from app.installations import service as installations
from app.installations.models import InstallationStatus
from app.runs import queue
from app.runs.models import RunStatus, SyncRun
from app.runs.queue import WEBHOOK_TRIGGER, RunAlreadyActive
from app.runs.targets import MAX_CHECKED_IDS, RunTargets, TargetUnit, unit_key
from app.runtime import Runtime
from app.webhooks import budget, repository, usage_repository
from app.webhooks.metrics import WEBHOOK_APPLIED, WEBHOOK_LAG
from app.webhooks.models import WebhookEvent

log = get_logger(__name__)

CONTINUE_TRIGGER = "continue"
# Runs an operator or the lifecycle asked for read every unit; the others leave units of
# covered streams to reconciliation when they are not due.
READ_EVERYTHING = frozenset({"manual", "install", "destination_change"})
MAX_ATTEMPTS = 5  # runs that failed to read an event's unit before it is left to reconciliation
EVENTS_PER_RUN = 5000
RECENT_RUNS = 50
COMPANIES_PER_PASS = 200
SETTLE_BATCH = 50
# A run that stopped for the budget continues once this share of the hour's plan is free.
CONTINUE_AT_SHARE = 0.1
# The longest events are gathered when the hour's plan is nearly spent.
MAX_COALESCE_SECONDS = 60.0
# While deliveries keep arriving, events are read at least every this many windows.
BURST_WINDOWS = 3


def targets_of(events: Sequence[WebhookEvent]) -> RunTargets:
    """The units a batch of events touches: ids changed and deleted, earliest event time."""
    changed: dict[tuple[str, int | None], set[int]] = defaultdict(set)
    deleted: dict[tuple[str, int | None], set[int]] = defaultdict(set)
    first: dict[tuple[str, int | None], datetime] = {}
    for event in events:
        key = (event.stream, event.project_id)
        (deleted if event.event_type == "delete" else changed)[key].add(event.resource_id)
        if key not in first or event.occurred_at < first[key]:
            first[key] = event.occurred_at
    units = [
        TargetUnit(
            stream=stream,
            project_id=project_id,
            # A record changed and then deleted is not looked for in the read.
            changed=sorted(changed[(stream, project_id)] - deleted[(stream, project_id)])[
                :MAX_CHECKED_IDS
            ],
            deleted=sorted(deleted[(stream, project_id)]),
            first_event_at=at,
        )
        for (stream, project_id), at in sorted(first.items(), key=lambda item: item[1])
    ]
    return RunTargets(units=units)


async def apply_pass(rt: Runtime) -> int:
    """Settles events of ended runs, then queues runs for companies whose events are due;
    returns how many runs it queued (or added events to)."""
    await settle_ended_runs(rt)
    now = utcnow()
    window = timedelta(seconds=rt.settings.webhook_coalesce_seconds)
    async with unit_of_work(rt.sessions) as session:
        waiting = await repository.pending_companies(session, COMPANIES_PER_PASS)
    queued = 0
    for company_id, oldest, newest in waiting:
        if oldest > now - window:
            break  # sorted by their oldest event: the rest are not due either
        queued += int(await queue_company(rt, company_id, waited=now - oldest, quiet=now - newest))
    if queued:
        rt.wake_scheduler()
    return queued


def coalescing_window(base: float, used_ratio: float) -> float:
    """Seconds events of a company are gathered before a run reads them: the configured
    window while under half the hour's plan is used, growing to MAX_COALESCE_SECONDS as the
    plan is spent, so a company whose records change all the time costs less per hour."""
    if used_ratio <= 0.5:
        return base
    stretch = min(1.0, (used_ratio - 0.5) / 0.5)
    return base + (max(base, MAX_COALESCE_SECONDS) - base) * stretch


def due(window: float, waited: timedelta, quiet: timedelta) -> bool:
    """Whether a company's waiting events go to a run now: the oldest waited its window and
    the burst paused for half of it, or the oldest waited three windows whatever comes."""
    waited_s, quiet_s = waited.total_seconds(), quiet.total_seconds()
    return waited_s >= window and (quiet_s >= window / 2 or waited_s >= BURST_WINDOWS * window)


async def queue_company(
    rt: Runtime,
    company_id: int,
    waited: timedelta = timedelta.max,
    quiet: timedelta = timedelta.max,
) -> bool:
    """Hands a company's waiting events to a run (a new one, or one still queued), once they
    are due (see `due`)."""
    async with unit_of_work(rt.sessions) as session:
        inst = await installations.get(session, company_id)
        if inst is None or inst.status == InstallationStatus.uninstalled:
            closed = await repository.close_company_events(session, company_id, "closed", utcnow())
            WEBHOOK_APPLIED.labels("closed").inc(closed)
            return False
        if inst.paused or inst.status != InstallationStatus.active:
            return False  # they wait until the installation can run again
        now_budget = await budget.current(session, rt, company_id)
        if now_budget.remaining <= 0:
            return False  # they wait for the next window
        window = coalescing_window(rt.settings.webhook_coalesce_seconds, now_budget.used_ratio)
        if not due(window, waited, quiet):
            return False
        events = await repository.pending_events(session, company_id, EVENTS_PER_RUN)
        if not events:
            return False
        try:
            run, _created = await queue.enqueue(
                session, company_id, trigger=WEBHOOK_TRIGGER, targets=targets_of(events)
            )
        except RunAlreadyActive:
            return False  # a run is going: the events go to the next one
        await repository.assign(session, [event.id for event in events], run.id)
    return True


async def settle_ended_runs(rt: Runtime) -> int:
    """Settles the events of runs that ended; returns how many runs it looked at."""
    async with unit_of_work(rt.sessions) as session:
        runs = await repository.ended_runs_with_events(session, SETTLE_BATCH)
        for run in runs:
            await settle(session, run)
        for run_id in await repository.orphaned_run_ids(session, SETTLE_BATCH):
            await repository.release_run(session, run_id)
    return len(runs)


async def settle(session: AsyncSession, run: SyncRun) -> None:
    """Decides each event of an ended run from what the run recorded."""
    outcome = run.progress.targets
    now = utcnow()
    for event in await repository.events_of_run(session, run.id):
        key = unit_key(event.stream, event.project_id)
        deleting = event.event_type == "delete"
        landed = key in (outcome.deletes if deleting else outcome.read)
        if landed:
            missing = not deleting and event.resource_id in outcome.unmatched.get(key, [])
            if missing and event.attempts == 0:
                _release(event, count=True)  # read once more: Procore may not have shown it yet
                continue
            _close(event, "unmatched" if missing else "applied", now)
            if not missing:
                written = outcome.written_at.get(key) or run.finished_at or now
                WEBHOOK_LAG.observe(max(0.0, (written - event.occurred_at).total_seconds()))
        elif key in outcome.deferred:
            _release(event, count=False)  # left for a later run: budget or waiting events
        elif event.attempts + 1 >= MAX_ATTEMPTS:
            _close(event, "gave_up", now)
            log.warning(
                "webhook event left to reconciliation after repeated failures",
                company_id=event.company_id,
                stream=event.stream,
                run_id=run.id,
            )
        else:
            _release(event, count=True)


def _release(event: WebhookEvent, *, count: bool) -> None:
    event.run_id = None
    if count:
        event.attempts += 1


def _close(event: WebhookEvent, outcome: str, now: datetime) -> None:
    event.applied_at = now
    event.outcome = outcome
    WEBHOOK_APPLIED.labels(outcome).inc()


async def note_finished_runs(rt: Runtime, since: datetime) -> datetime:
    """Remembers companies whose runs (finished since `since`) left units for later;
    returns the new high-water mark."""
    mark = since
    async with unit_of_work(rt.sessions) as session:
        for run in await repository.finished_since(session, since):
            if run.finished_at is not None and run.finished_at > mark:
                mark = run.finished_at
            work = run.work
            if work is not None and not work.whole:
                continue  # a targeted run's units left for later go back to their events
            if run.status == RunStatus.succeeded and run.progress.deferred_units:
                await budget.note_deferred(session, rt, run.company_id, run.id)
    return mark


async def continue_deferred(rt: Runtime) -> int:
    """Queues a continuation for each company whose last whole run left units for later, once
    no run is going and (after a spent budget) enough of the hour's plan is free again. Runs
    that only read event targets since do not count: they read no unit the continuation needs.
    """
    queued = 0
    async with unit_of_work(rt.sessions) as session:
        rows = await usage_repository.deferred_budgets(session)
    for row in rows:
        async with unit_of_work(rt.sessions) as session:
            recent = await repository.recent_runs(session, row.company_id, RECENT_RUNS)
            deferred = _deferred_run(recent, row.deferred_run_id)
            inst = await installations.get(session, row.company_id)
            gone = inst is None or inst.status != InstallationStatus.active or inst.paused
            if deferred is None or gone:
                await usage_repository.clear_deferred(session, row.company_id)
                continue
            if any(r.status in (RunStatus.queued, RunStatus.running) for r in recent):
                continue
            progress = deferred.progress
            now_budget = await budget.current(session, rt, row.company_id)
            needed = 1
            if progress.deferred_reason and "budget" in progress.deferred_reason:
                needed = max(1, int(now_budget.planned * CONTINUE_AT_SHARE))
            if now_budget.remaining < needed:
                continue
            window = progress.window_end or deferred.started_at
            work = deferred.work
            everything = deferred.trigger in READ_EVERYTHING or bool(work and work.everything)
            try:
                await queue.enqueue(
                    session,
                    row.company_id,
                    trigger=CONTINUE_TRIGGER,
                    targets=RunTargets(whole=True, everything=everything, only_staler_than=window),
                )
            except RunAlreadyActive:
                continue
            await usage_repository.clear_deferred(session, row.company_id)
            queued += 1
    if queued:
        rt.wake_scheduler()
    return queued


def _deferred_run(recent: Sequence[SyncRun], run_id: str | None) -> SyncRun | None:
    """The run that left units, if no whole run came after it (newest first in `recent`)."""
    for run in recent:
        if run.id == run_id:
            return run
        work = run.work
        if work is None or work.whole:
            return None  # a later whole run read (or deferred) everything again
    return None
