"""Runs one sync of one installation: projects first, then every selected stream, then deletes."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import DBAPIError

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
from app.runs.models import RunStatus
from app.sync import deletes
from app.sync.context import RunCancelled, RunContext
from app.sync.readers import read_projects, run_unit

log = get_logger(__name__)


async def execute(ctx: RunContext) -> tuple[RunStatus, str | None]:
    """Runs every stream; returns the run's status and error (stats are in ctx)."""
    destination: Destination = ctx.destination
    await destination.open()
    succeeded = False
    try:
        await read_projects(ctx)
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

    async def one(project_id: int | None) -> None:
        async with limit:
            ctx.check()
            await run_unit(ctx, stream, project_id)

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
        if not isinstance(first, ProcoreError | DestinationError | OSError | ValueError):
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
