"""Runs one sync of one installation: projects, the deletes events announced, the planned units
(targets first, then stalest first), then found deletes.

A run that must stop early (its request allowance is spent, or it reads beyond its targets
while webhook events wait) leaves the units it has not started for a later run and still
succeeds: deferred, never failed.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from sqlalchemy.exc import DBAPIError

from app.core.database import unit_of_work, utcnow
from app.core.logging import get_logger, scrub_text
from app.destinations import Destination, DestinationError
from app.procore import (
    AppNotConnectedError,
    InvalidClientError,
    ProcoreError,
    ProcoreForbiddenError,
    ProcoreNotFoundError,
    ProcoreRateLimitError,
)
from app.procore.catalog import STREAMS, Scope
from app.runs import state as state_repo
from app.runs.models import RunStatus
from app.runs.state import COMPANY_SCOPE
from app.sync import deletes
from app.sync.context import RunCancelled, RunContext
from app.sync.plan import PlannedUnit, UnitState, plan_units
from app.sync.readers import read_projects, run_unit

log = get_logger(__name__)

BUDGET_SPENT = "request budget spent"
EVENTS_WAITING = "webhook events waiting"
# How often a run reading beyond its targets asks whether events wait.
EVENTS_CHECK_SECONDS = 0.5


async def execute(ctx: RunContext) -> tuple[RunStatus, str | None]:
    """Runs the planned units; returns the run's status and error (stats are in ctx)."""
    destination: Destination = ctx.destination
    await destination.open()
    succeeded = False
    first_request = ctx.requests.requests  # the allowance counts from here
    try:
        targets = ctx.spec.targets
        only_targets = targets is not None and not targets.whole
        if not only_targets or "projects:0" in ctx.target_keys:
            await read_projects(ctx)
            if "projects:0" in ctx.target_keys:
                _target_read(ctx, "projects:0")
        await apply_event_deletes(ctx)
        plan = plan_units(
            streams=ctx.streams,
            project_ids=ctx.project_ids,
            states=await _states(ctx),
            targets=targets,
            coverage=ctx.spec.coverage,
            full_refresh=ctx.full_refresh,
            now=utcnow(),
        )
        failures = await run_planned(ctx, plan, Gate(ctx, first_request))
        # Each stream's deletes come from its own complete listings: one stream's failure
        # never holds back another's (a failed stream's own deletes wait for its next run).
        await deletes.apply(ctx, skip={name for name, _ in failures})
        if failures:
            described = "; ".join(f"{name}: {error}" for name, error in failures)
            return RunStatus.failed, f"{len(failures)} stream(s) failed; {described}"
        succeeded = True
        return RunStatus.succeeded, None
    finally:
        await _account(ctx)
        await destination.finish_run(ctx.run_id, succeeded=succeeded)
        await destination.close()


async def _account(ctx: RunContext) -> None:
    """Counts the run's last requests against the budget (checkpoints counted the rest)."""
    try:
        async with unit_of_work(ctx.rt.sessions) as session:
            await ctx.account(session, ctx.snapshot())
    except Exception as exc:  # never hide how the run itself ended
        log.warning("request usage not recorded", error=type(exc).__name__)


async def _states(ctx: RunContext) -> dict[tuple[str, int | None], UnitState]:
    async with unit_of_work(ctx.rt.sessions) as session:
        rows = await state_repo.for_company(session, ctx.company_id)
    return {
        (row.stream, None if row.project_id == COMPANY_SCOPE else row.project_id): UnitState(
            row.cursor, row.last_success_at
        )
        for row in rows
    }


async def apply_event_deletes(ctx: RunContext) -> None:
    """Marks the records delete events named deleted at once, and forgets them as known ids
    (so a later full listing does not count them again)."""
    targets = ctx.spec.targets
    for unit in targets.units if targets else []:
        if not unit.deleted or unit.key in ctx.targets_outcome.deletes:
            continue
        stream = STREAMS.get(unit.stream)
        if stream is None or unit.stream not in ctx.streams:
            ctx.targets_outcome.deletes.append(unit.key)
            continue
        project_id = None if stream.scope == Scope.company else unit.project_id
        marked = await ctx.destination.mark_deleted(
            unit.stream, ctx.company_id, unit.deleted, utcnow(), run_id=ctx.run_id
        )
        ctx.stream_stats(unit.stream).records_deleted += marked
        gone = set(unit.deleted)
        async with unit_of_work(ctx.rt.sessions) as session:
            await ctx.guard(session)
            row = await state_repo.load(session, ctx.company_id, unit.stream, project_id)
            if row.known_ids is not None and gone & set(row.known_ids):
                row.known_ids = [i for i in row.known_ids if i not in gone]
            ctx.targets_outcome.deletes.append(unit.key)
            await ctx.save_progress(session, ctx.snapshot())


class Gate:
    """Decides, before each unit starts, whether it must be left for a later run."""

    def __init__(self, ctx: RunContext, first_request: int) -> None:
        self.ctx = ctx
        self.started = time.monotonic()
        self.first_request = first_request
        self.reason: str | None = None
        self.in_flight = 0  # units started and not finished: each will cost a request at least
        self._checked_at = 0.0
        self._waiting = False

    async def defer(self, unit: PlannedUnit) -> str | None:
        """Why this unit waits for a later run, or None to read it now."""
        ctx = self.ctx
        allowance = ctx.spec.request_allowance
        spent = ctx.requests.requests - self.first_request + self.in_flight
        if self.reason == BUDGET_SPENT or (allowance is not None and spent >= allowance):
            self.reason = BUDGET_SPENT
            return BUDGET_SPENT
        if unit.target:
            return None
        if self.reason == EVENTS_WAITING:
            return EVENTS_WAITING
        if time.monotonic() - self.started < ctx.spec.yield_after_seconds:
            return None
        now = time.monotonic()
        if now - self._checked_at >= EVENTS_CHECK_SECONDS:
            self._checked_at = now
            self._waiting = await ctx.events_waiting()
        if self._waiting:
            self.reason = EVENTS_WAITING
            return EVENTS_WAITING
        return None


async def run_planned(
    ctx: RunContext, plan: list[PlannedUnit], gate: Gate
) -> list[tuple[str, str]]:
    """Reads the planned units (bounded concurrency, in plan order); returns the streams that
    failed, each with its error."""
    by_stream: dict[str, list[PlannedUnit]] = defaultdict(list)
    for unit in plan:
        by_stream[unit.stream].append(unit)
    for name, units in by_stream.items():
        stats = ctx.stream_stats(name)
        stats.units_total = len(units)
        stats.start()
    limit = asyncio.Semaphore(ctx.rt.settings.project_concurrency)
    deferred: dict[str, int] = defaultdict(int)
    left: list[PlannedUnit] = []

    async def one(unit: PlannedUnit) -> None:
        async with limit:
            ctx.check()
            reason = await gate.defer(unit)
            if reason is not None:
                deferred[unit.stream] += 1
                left.append(unit)
                _defer(ctx, unit, reason)
                return
            gate.in_flight += 1
            try:
                await run_unit(ctx, STREAMS[unit.stream], unit.project_id)
            except (ProcoreForbiddenError, ProcoreNotFoundError) as exc:
                if unit.target and not isinstance(exc, AppNotConnectedError):
                    _target_read(ctx, unit.key)  # nothing there to read: its events are done
                raise
            finally:
                gate.in_flight -= 1
            if unit.target:
                _target_read(ctx, unit.key)
            elif unit.reconcile:
                ctx.reconciled_units += 1

    results = await asyncio.gather(*(one(u) for u in plan), return_exceptions=True)
    outcomes: dict[str, list[BaseException]] = defaultdict(list)
    for unit, result in zip(plan, results, strict=True):
        if isinstance(result, BaseException):
            outcomes[unit.stream].append(result)
    failures: list[tuple[str, str]] = []
    for name, units in by_stream.items():
        error = _conclude_stream(ctx, name, len(units), outcomes.get(name, []), deferred[name])
        if error:
            failures.append((name, error))
    if left and ctx.full_refresh:
        await _keep_full_refresh(ctx, left)
    return failures


def _target_read(ctx: RunContext, key: str) -> None:
    """A target unit was read: its changes landed; ids it did not return are noted."""
    outcome = ctx.targets_outcome
    if key in outcome.read:
        return  # read by an earlier attempt of this run
    outcome.read.append(key)
    outcome.written_at[key] = utcnow()
    missing = ctx.watched.get(key, set()) - ctx.seen.get(key, set())
    if missing:
        outcome.unmatched[key] = sorted(missing)
    else:
        outcome.unmatched.pop(key, None)


def _defer(ctx: RunContext, unit: PlannedUnit, reason: str) -> None:
    ctx.deferred_units += 1
    ctx.deferred_reason = ctx.deferred_reason or reason
    ctx.stream_stats(unit.stream).units_deferred += 1
    if unit.target and unit.key not in ctx.targets_outcome.deferred:
        ctx.targets_outcome.deferred.append(unit.key)


async def _keep_full_refresh(ctx: RunContext, units: list[PlannedUnit]) -> None:
    """A full refresh that left units for later: their cursors go, so the run that reads
    them reads them in full too (their known ids stay, for deletes)."""
    if not units:
        return
    async with unit_of_work(ctx.rt.sessions) as session:
        await ctx.guard(session)
        for unit in units:
            row = await state_repo.load(session, ctx.company_id, unit.stream, unit.project_id)
            checkpoint = row.saved_checkpoint
            if checkpoint is None or checkpoint.run_id != ctx.run_id:
                row.cursor = None


def _conclude_stream(
    ctx: RunContext, name: str, total: int, errors: list[BaseException], deferred: int
) -> str | None:
    """Records how a stream's units went; raises what ends the run; returns a failure."""
    stats = ctx.stream_stats(name)
    for error in errors:
        if isinstance(error, DBAPIError):
            stats.stop("interrupted", "the service database was lost")
            raise error
        if isinstance(error, ProcoreRateLimitError):
            stats.stop("paused", "Procore rate limit spent; the run resumes after the reset")
            raise error
        if isinstance(error, RunCancelled | AppNotConnectedError | InvalidClientError):
            stats.stop("cancelled" if isinstance(error, RunCancelled) else "failed", str(error))
            raise error
    # A tool disabled in one project, or a project the app may not read, answers 403 or 404:
    # that project is skipped (its cursor stays) and the rest of the run goes on.
    skipped = [e for e in errors if isinstance(e, ProcoreForbiddenError | ProcoreNotFoundError)]
    errors = [e for e in errors if e not in skipped]
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} of {total} project(s) skipped: {describe(skipped[0])}")
        log.warning("projects skipped", stream=name, count=len(skipped), error=describe(skipped[0]))
    if deferred:
        notes.append(f"{deferred} of {total} unit(s) left for a later run ({ctx.deferred_reason})")
    if notes:
        stats.note = "; ".join(notes)[:500]
    if errors:
        first = errors[0]
        if not isinstance(first, ProcoreError | DestinationError | OSError | ValueError):
            log.error(
                "stream failed", stream=name, error_type=type(first).__name__, error=str(first)
            )
        message = f"{len(errors)} of {total} unit(s) failed: {describe(first)}"
        stats.stop("failed", message)
        return message
    stats.stop("skipped" if skipped and len(skipped) == total else "succeeded")
    return None


def describe(error: BaseException) -> str:
    """A short, secret-free description of an error for the run record."""
    text = scrub_text(str(error) or type(error).__name__)
    return f"{type(error).__name__}: {text}"[:500]
