"""Runs one sync of one installation: projects first, then every selected stream, then deletes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError

from app.core.database import unit_of_work, utcnow
from app.core.logging import get_logger, scrub_text
from app.core.runtime import Runtime
from app.destinations import Destination, InvalidDestinationURL, create_destination
from app.destinations.policy import policy_from_settings
from app.installations import destination_secrets
from app.installations import service as installations
from app.installations.models import InstallationStatus
from app.procore import (
    AppNotConnectedError,
    InvalidClientError,
    ProcoreError,
    ProcoreForbiddenError,
    ProcoreNotFoundError,
    ProcoreRateLimitError,
    RequestStats,
)
from app.sync import deletes
from app.sync import state as state_repo
from app.sync.catalog import STREAMS, Scope, parse_stream_selection
from app.sync.context import RunCancelled, RunContext
from app.sync.models import RunStatus, SyncRun
from app.sync.records import parse_timestamp, record_id, to_destination
from app.sync.units import ChildUnitSync, UnitSync

log = get_logger(__name__)


class FatalRunError(Exception):
    """The whole run must stop (credentials rejected, app disconnected)."""


async def prepare(rt: Runtime, run: SyncRun, stop: asyncio.Event) -> RunContext:
    """Loads what a run needs: credentials, destination, streams and the window end."""
    async with unit_of_work(rt.sessions) as session:
        inst = await installations.get_or_404(session, run.company_id)
        if inst.status != InstallationStatus.active:
            raise FatalRunError(f"installation {run.company_id} is {inst.status}")
        creds = await installations.credentials_for(session, rt, inst)
        url = await installations.destination_url_for(session, rt, inst)
        signing, previous = await destination_secrets.signing_secrets(
            session, rt.keyring, inst.company_id
        )
        streams = parse_stream_selection(inst.streams)
        try:
            destination = create_destination(
                url,
                policy=policy_from_settings(rt.settings),
                http=rt.http,
                signing_secret=signing,
                previous_signing_secrets=previous,
            )
        except InvalidDestinationURL as exc:  # e.g. the destination policy changed since
            raise FatalRunError(str(exc)) from None
        # Before the first write, so that a purge finds this destination whatever happens.
        await destination_secrets.remember_destination(session, rt.keyring, inst.company_id, url)
    # A resumed run keeps the window it started with, so its filters and cursors line up.
    window_end = parse_timestamp((run.stats or {}).get("window_end")) or run.started_at or utcnow()
    ctx = RunContext(
        rt=rt,
        run_id=run.id,
        company_id=run.company_id,
        creds=creds,
        destination=destination,
        window_end=window_end,
        full_refresh=run.full_refresh,
        streams=streams,
        stop=stop,
    )
    ctx.restore(run.stats or {})
    return ctx


async def execute(ctx: RunContext) -> tuple[RunStatus, str | None]:
    """Runs every stream; returns the run's status and error (stats are in ctx)."""
    destination: Destination = ctx.destination
    await destination.open()
    succeeded = False
    try:
        await sync_projects(ctx)
        failures: list[str] = []
        for name in ctx.streams:
            if name == "projects":
                continue
            error = await sync_stream(ctx, name)
            if error:
                failures.append(f"{name}: {error}")
        if failures:
            return RunStatus.failed, f"{len(failures)} stream(s) failed; " + "; ".join(failures)
        await deletes.apply(ctx)
        succeeded = True
        return RunStatus.succeeded, None
    finally:
        await destination.finish_run(ctx.run_id, succeeded=succeeded)
        await destination.close()


async def sync_stream(ctx: RunContext, name: str) -> str | None:
    """Syncs one stream over its units (projects in parallel, bounded); returns an error or None."""
    stream = STREAMS[name]
    stats = ctx.stream_stats(name)
    projects: list[int | None] = [None] if stream.scope == Scope.company else list(ctx.project_ids)
    stats.units_total = len(projects)
    stats.start()
    limit = asyncio.Semaphore(ctx.rt.settings.project_concurrency)
    unit_class = ChildUnitSync if stream.parent else UnitSync

    async def one(project_id: int | None) -> None:
        async with limit:
            ctx.check()
            await unit_class(ctx, stream, project_id).run()

    results = await asyncio.gather(*(one(p) for p in projects), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
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
    if skipped:
        stats.note = (
            f"{len(skipped)} of {len(projects)} project(s) skipped: {describe(skipped[0])}"
        )[:500]
        log.warning("projects skipped", stream=name, count=len(skipped), error=describe(skipped[0]))
    if errors:
        first = errors[0]
        if not isinstance(first, ProcoreError | OSError | ValueError):
            log.error(
                "stream failed", stream=name, error_type=type(first).__name__, error=str(first)
            )
        message = f"{len(errors)} of {len(projects)} unit(s) failed: {describe(first)}"
        stats.stop("failed", message)
        return message
    stats.stop("skipped" if skipped and len(skipped) == len(projects) else "succeeded")
    return None


def describe(error: BaseException) -> str:
    """A short, secret-free description of an error for the run record."""
    text = scrub_text(str(error) or type(error).__name__)
    return f"{type(error).__name__}: {text}"[:500]


async def sync_projects(ctx: RunContext) -> None:
    """Lists the permitted projects (always in full: it is one request per 1,000 projects).

    Writes changed projects when the `projects` stream is selected, and flags projects that
    vanished from the permitted list on the installation instead of deleting their data.
    """
    stream = STREAMS["projects"]
    selected = "projects" in ctx.streams
    stats = ctx.stream_stats("projects") if selected else None
    if stats:
        stats.start()
        stats.units_total = 1
    async with unit_of_work(ctx.rt.sessions) as session:
        row = await state_repo.load(session, ctx.company_id, "projects", None)
        cursor, known = row.cursor, set(row.known_ids or [])
    since = None
    if cursor is not None and not ctx.full_refresh:
        since = cursor - timedelta(seconds=ctx.rt.settings.lookback_seconds)
    request_stats = RequestStats()
    current: list[int] = []
    try:
        async for page in ctx.rt.procore.paginate(
            ctx.creds,
            stream.list_path(company_id=ctx.company_id, project_id=None),
            company_id=ctx.company_id,
            params=stream.list_params(company_id=ctx.company_id, project_id=None),
            stats=request_stats,
        ):
            ctx.check()
            current.extend(rid for rid in map(record_id, page.records) if rid is not None)
            if stats is not None:
                await _write_projects(ctx, page.records, since, stats)
    finally:
        ctx.requests.requests += request_stats.requests
        ctx.requests.token_requests += request_stats.token_requests
        if stats:
            stats.requests += request_stats.requests
    ctx.project_ids = current
    ctx.missing_projects = sorted(known - set(current))
    async with unit_of_work(ctx.rt.sessions) as session:
        row = await state_repo.load(session, ctx.company_id, "projects", None)
        row.known_ids = sorted(known.union(current))
        if stats:
            # Only a written listing moves the cursor: a later selection of `projects` must
            # still find every project to write.
            row.cursor = ctx.window_end
            row.last_success_at = utcnow()
            row.records = (row.records or 0) + stats.records_written
        inst = await installations.get_or_404(session, ctx.company_id)
        if inst.missing_projects != ctx.missing_projects:
            inst.missing_projects = ctx.missing_projects
            if ctx.missing_projects:
                log.warning("projects left the permitted list", missing=ctx.missing_projects)
    if stats:
        stats.units_done = 1
        stats.stop("succeeded")


async def _write_projects(
    ctx: RunContext, records: list[dict[str, Any]], since: datetime | None, stats: Any
) -> None:
    if since is not None:
        records = [r for r in records if (parse_timestamp(r.get("updated_at")) or since) >= since]
    batch, skipped = to_destination(records, project_id=None, now=utcnow())
    stats.records_read += len(records)
    stats.records_skipped += skipped
    if batch:
        stats.count_write(
            await ctx.destination.write("projects", ctx.company_id, batch, run_id=ctx.run_id)
        )
