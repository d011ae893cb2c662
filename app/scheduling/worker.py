"""Claims queued runs from the database and executes them, with leases, heartbeats and cancel."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from sqlalchemy.exc import DBAPIError

from app.alerts import service as alerts
from app.core.database import unit_of_work, utcnow
from app.core.logging import get_logger
from app.core.metrics import (
    SYNC_RECORDS,
    SYNC_RUN_DURATION,
    SYNC_RUNS,
    SYNC_RUNS_RECOVERED,
    SYNC_RUNS_RELEASED,
    SYNC_RUNS_RUNNING,
)
from app.destinations import DestinationError
from app.installations import service as installations
from app.procore import (
    AppNotConnectedError,
    InvalidClientError,
    ProcoreError,
    ProcoreRateLimitError,
)
from app.runs import leases, queue
from app.runs.leases import Lease
from app.runs.models import RunStatus, SyncRun
from app.runtime import Runtime
from app.scheduling.runspec import FatalRunError, build_spec, make_context
from app.sync import engine
from app.sync.context import RunCancelled, RunContext, RunFenced

log = get_logger(__name__)


class StopReason(StrEnum):
    """Why a running sync was asked to stop at its next page."""

    cancel = "cancel"  # an operator asked for it: the run ends as cancelled
    shutdown = "shutdown"  # this process is stopping: the run goes back to the queue
    take_turns = "take_turns"  # ran its slice while others wait: back of the queue
    lease_lost = "lease_lost"  # another worker may own it now: write nothing more
    database_lost = "database_lost"  # the service database went away: resume when it is back
    rate_limited = "rate_limited"  # Procore's window is spent: resume after it resets


@dataclass
class ActiveRun:
    """A sync this worker is executing."""

    run: SyncRun
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    reason: StopReason | None = None
    started: float = field(default_factory=time.monotonic)
    ctx: RunContext | None = None
    task: asyncio.Task[RunStatus] | None = None
    records_counted: bool = False
    resume_at: datetime | None = None
    requeue: str | None = None  # trigger of a run to queue once this one is recorded

    def request_stop(self, reason: StopReason) -> None:
        """Asks the run to stop at its next page; the first reason wins."""
        if self.reason is None:
            self.reason = reason
        self.stop.set()


class Worker:
    """Runs up to `concurrency` syncs at once in this process, fairly across installations."""

    def __init__(self, rt: Runtime, *, concurrency: int | None = None) -> None:
        self.rt = rt
        self.concurrency = concurrency or rt.settings.worker_concurrency
        self.running: dict[str, ActiveRun] = {}
        self._closing = False
        self._next_liveness_check = 0.0
        # SQLite: a lock file the kernel frees when this process dies (app/runs/owners.py).
        rt.identity.hold_lock(rt.settings.database_url)

    @property
    def busy_companies(self) -> list[int]:
        """Companies this worker is syncing right now."""
        return [active.run.company_id for active in self.running.values()]

    async def poll(self) -> int:
        """Claims and starts as many runs as there are free slots; returns how many started."""
        await self._resume_from_dead_holders()
        started = 0
        while not self._closing and len(self.running) < self.concurrency:
            async with unit_of_work(self.rt.sessions) as session:
                claimed = await leases.claim(
                    session,
                    self.rt.worker_id,
                    self.rt.settings.lease_seconds,
                    exclude=self.busy_companies,
                )
            if claimed is None:
                break
            if claimed.recovered:
                SYNC_RUNS_RECOVERED.inc()
                log.warning(
                    "resuming a run whose worker stopped heartbeating",
                    run_id=claimed.run.id,
                    company_id=claimed.run.company_id,
                    attempt=claimed.run.attempts,
                )
            self.start(claimed.run)
            started += 1
        return started

    async def _resume_from_dead_holders(self) -> None:
        """Makes the runs of a crashed process on this host claimable now (at start-up, then at
        most once per heartbeat interval), instead of waiting for their leases to expire."""
        settings, identity = self.rt.settings, self.rt.identity
        first = self._next_liveness_check == 0.0
        if self._closing or time.monotonic() < self._next_liveness_check:
            return
        interval = min(settings.heartbeat_seconds, settings.lease_seconds / 3)
        self._next_liveness_check = time.monotonic() + interval
        try:
            async with unit_of_work(self.rt.sessions) as session:
                ended = await leases.end_dead_leases(session, identity.is_dead)
        except Exception as exc:  # the claim below still works; leases expire anyway
            log.warning("could not check for dead lease holders", error=str(exc)[:200])
            return
        for run_id, owner in ended:
            log.warning(
                "the process holding a run died; resuming it without waiting for its lease",
                run_id=run_id,
                previous_owner=owner,
            )
            identity.forget(owner)
        if first:
            identity.prune()

    def start(self, run: SyncRun) -> ActiveRun:
        """Starts executing a run this worker has claimed."""
        active = ActiveRun(run)
        self.running[run.id] = active
        active.task = asyncio.create_task(self._execute(active), name=f"sync-{run.id}")
        active.task.add_done_callback(functools.partial(self._finished, run.id))
        return active

    def _finished(self, run_id: str, _task: object = None) -> None:
        self.running.pop(run_id, None)
        self.rt.wake_scheduler()

    async def shutdown(self, grace_seconds: float | None = None) -> None:
        """Asks every running sync to checkpoint and hand its run back, within a bounded time."""
        grace = self.rt.settings.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        self._closing = True
        for active in self.running.values():
            active.request_stop(StopReason.shutdown)
        tasks = [active.task for active in self.running.values() if active.task is not None]
        if not tasks:
            return
        log.info("stopping running syncs", runs=len(tasks), grace_seconds=grace)
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            # Cancelled mid-page: their runs are released below, or their leases expire.
            await asyncio.wait(pending, timeout=5)

    async def _execute(self, active: ActiveRun) -> RunStatus:
        run = active.run
        structlog.contextvars.bind_contextvars(run_id=run.id, company_id=run.company_id)
        log.info("sync started", attempt=run.attempts, full_refresh=run.full_refresh)
        SYNC_RUNS_RUNNING.inc()
        status, error = RunStatus.failed, None
        beat = asyncio.create_task(self._heartbeat(active), name=f"heartbeat-{run.id}")
        self.rt.register_local_run(
            run.id, run.company_id, functools.partial(active.request_stop, StopReason.cancel)
        )
        try:
            try:
                spec = await build_spec(self.rt, run)
                active.ctx = make_context(self.rt, spec, active.stop)
                status, error = await engine.execute(active.ctx)
            except RunFenced:
                # Its checkpoints were reset with the destination: the next run copies everything
                # to the new destination, and it is queued now rather than at the next slot.
                status, error = RunStatus.cancelled, "destination changed during the run"
                active.requeue = "destination_change"
            except RunCancelled:
                status, error = RunStatus.cancelled, "cancelled; checkpoints kept"
            except AppNotConnectedError as exc:
                error = f"app is not connected to this company: {exc.message}"
                await self._disconnect(run.company_id, exc.message)
            except InvalidClientError as exc:
                error = f"credentials rejected by Procore: {exc.message}"
                await self._mark_credentials_invalid(run.company_id, error)
            except FatalRunError as exc:
                error = str(exc)
            except asyncio.CancelledError:
                # The shutdown grace ran out mid-page: hand the run back so it resumes elsewhere.
                await asyncio.shield(self._release(active, to_back=False))
                raise
            except ProcoreRateLimitError as exc:
                # A spent window (usually the hourly one): pause, keep checkpoints, come back.
                wait = max(exc.retry_after or 60.0, 1.0)
                active.resume_at = utcnow() + timedelta(seconds=wait)
                active.request_stop(StopReason.rate_limited)
                log.warning("Procore rate limit spent; the run pauses", resume_in_seconds=wait)
            except DBAPIError as exc:
                # Not the run's fault: it resumes from its checkpoints once the database is back.
                log.warning("service database lost during the sync", error=type(exc).__name__)
                active.request_stop(StopReason.database_lost)
            except (DestinationError, ProcoreError, OSError) as exc:
                # Expected conditions (a destination refusing or unwritable, Procore answering an
                # error): the run fails with the reason, logged in one line below, no traceback.
                error = engine.describe(exc)
            except Exception as exc:  # a run must always end with a recorded status
                log.exception("sync crashed")
                error = engine.describe(exc)
            finally:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
            return await self._conclude(active, status, error)
        finally:
            self.rt.forget_local_run(run.id)
            SYNC_RUNS_RUNNING.dec()
            structlog.contextvars.unbind_contextvars("run_id", "company_id")

    async def _conclude(self, active: ActiveRun, status: RunStatus, error: str | None) -> RunStatus:
        """Records how the run ended, or hands it back to the queue."""
        run, reason = active.run, active.reason
        interrupted = status != RunStatus.succeeded and reason is not None
        if interrupted and reason == StopReason.lease_lost:
            log.warning("sync stopped: its lease was lost; the run is left to its new owner")
            self._count_records(active)
            return RunStatus.running
        if interrupted and reason == StopReason.rate_limited:
            if await self._release(active, to_back=False, not_before=active.resume_at):
                return RunStatus.queued
            status, error = RunStatus.cancelled, "cancelled; checkpoints kept"
        if interrupted and reason == StopReason.database_lost:
            # Not released: its lease expires and a worker resumes it then, counting an attempt,
            # so a database error that is really permanent ends in `failed` after
            # CONNECTOR_MAX_RUN_ATTEMPTS instead of looping.
            return RunStatus.running
        if interrupted and reason in (StopReason.shutdown, StopReason.take_turns):
            if await self._release(active, to_back=reason == StopReason.take_turns):
                log.info(
                    "sync handed back to the queue; it resumes from its checkpoints",
                    reason=str(reason),
                )
                return RunStatus.queued
            # Not handed back: a cancel arrived meanwhile (or the lease is gone).
            status, error = RunStatus.cancelled, "cancelled; checkpoints kept"
        progress = active.ctx.snapshot() if active.ctx else None
        async with unit_of_work(self.rt.sessions) as session:
            recorded = await queue.finish(
                session, run.id, self.rt.worker_id, status=status, error=error, progress=progress
            )
            if recorded:
                await installations.record_run_end(
                    session, run.company_id, run.id, self.rt.health.drain(run.company_id)
                )
                if active.ctx is not None and active.ctx.projects_listed:
                    missing = active.ctx.missing_projects
                    if (
                        await installations.record_missing_projects(
                            session, run.company_id, missing
                        )
                        and missing
                    ):
                        log.warning("projects left the permitted list", missing=missing)
        if not recorded:
            log.warning(
                "sync ended but its lease was gone; outcome not recorded", status=str(status)
            )
            return RunStatus.running
        if active.requeue:
            async with unit_of_work(self.rt.sessions) as session:
                await queue.enqueue(session, run.company_id, trigger=active.requeue)
            self.rt.wake_scheduler()
        await alerts.after_run(self.rt, run.company_id, status, progress)
        SYNC_RUNS.labels(str(run.company_id), str(status)).inc()
        SYNC_RUN_DURATION.labels(str(status)).observe(time.monotonic() - active.started)
        self._count_records(active)
        # A failed run is worth a look: WARNING, one line, with the reason (never a traceback).
        (log.warning if status == RunStatus.failed else log.info)(
            "sync finished",
            status=str(status),
            error=error,
            requests=progress.requests if progress else None,
            records=progress.records if progress else None,
        )
        return status

    @staticmethod
    def _count_records(active: ActiveRun) -> None:
        if active.ctx is None or active.records_counted:
            return
        active.records_counted = True
        for name, stream_stats in active.ctx.stats.items():
            if stream_stats.records_written:
                SYNC_RECORDS.labels(name).inc(stream_stats.records_written)

    async def _heartbeat(self, active: ActiveRun) -> None:
        """Extends the lease, saves progress, and notices cancels; stops the run if it cannot."""
        settings = self.rt.settings
        interval = min(settings.heartbeat_seconds, settings.lease_seconds / 3)
        slice_seconds = settings.run_slice_seconds
        last_renewed = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                async with unit_of_work(self.rt.sessions) as session:
                    lease = await leases.heartbeat(
                        session, active.run.id, self.rt.worker_id, settings.lease_seconds
                    )
                    if lease != Lease.lost and active.ctx is not None:
                        await queue.save_progress(session, active.run.id, active.ctx.snapshot())
                    waiting = (
                        await queue.longest_wait_seconds(session)
                        if slice_seconds
                        and self._oldest(active)
                        and time.monotonic() - active.started > slice_seconds
                        else 0.0
                    )
            except Exception as exc:
                # The database is away: keep the run going while the lease is surely ours.
                if time.monotonic() - last_renewed > settings.lease_seconds * 0.8:
                    log.warning("cannot renew the lease; stopping the run", error=str(exc)[:200])
                    active.request_stop(StopReason.lease_lost)
                    return
                log.warning("heartbeat failed; retrying", error=str(exc)[:200])
                continue
            last_renewed = time.monotonic()
            if lease == Lease.lost:
                active.request_stop(StopReason.lease_lost)
                return
            if lease == Lease.cancel:
                active.request_stop(StopReason.cancel)
            elif waiting > 2 * interval and len(self.running) >= self.concurrency:
                log.info("sync takes turns: others are waiting", waiting=waiting)
                active.request_stop(StopReason.take_turns)

    def _oldest(self, active: ActiveRun) -> bool:
        """Whether `active` has run longest here (only that one takes turns at a time)."""
        return min(self.running.values(), key=lambda other: other.started) is active

    async def _release(
        self, active: ActiveRun, *, to_back: bool, not_before: datetime | None = None
    ) -> bool:
        self._count_records(active)
        async with unit_of_work(self.rt.sessions) as session:
            if active.ctx is not None:
                await queue.save_progress(session, active.run.id, active.ctx.snapshot())
            released = await leases.release(
                session, active.run.id, self.rt.worker_id, to_back=to_back, not_before=not_before
            )
        if released:
            SYNC_RUNS_RELEASED.inc()
        self.rt.wake_scheduler()
        return released

    async def _disconnect(self, company_id: int, detail: str) -> None:
        async with unit_of_work(self.rt.sessions) as session:
            await installations.mark_disconnected(session, self.rt, company_id, detail)

    async def _mark_credentials_invalid(self, company_id: int, error: str) -> None:
        async with unit_of_work(self.rt.sessions) as session:
            await installations.mark_credentials_invalid(session, company_id, error)
