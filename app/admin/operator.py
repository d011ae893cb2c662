"""What the operator commands of the CLI do, through the same services as the admin API.

`connector installations list|show` and `connector runs list|show|trigger` call these; each
opens one unit of work on the service database, like one admin API request.
"""

from __future__ import annotations

import asyncio

from app.admin import views
from app.core.database import unit_of_work
from app.installations import repository, service
from app.installations.models import InstallationStatus
from app.installations.schemas import InstallationDetail, InstallationView
from app.runs import queue
from app.runs.models import ACTIVE_STATUSES, RunStatus
from app.runs.schemas import SyncQueued, SyncRunSummary, SyncRunView
from app.runtime import Runtime

FOLLOW_INTERVAL_SECONDS = 1.0


async def list_installations(
    rt: Runtime, *, status: InstallationStatus | None = None, limit: int = 1000
) -> list[InstallationView]:
    """Installations ordered by company id, as `GET /admin/v1/installations` lists them."""
    async with unit_of_work(rt.sessions) as session:
        rows = await repository.list_page(
            session, status=status, paused=None, after=None, limit=limit
        )
        return [await views.installation_view(session, rt, inst) for inst in rows]


async def show_installation(rt: Runtime, company_id: int) -> InstallationDetail:
    """One installation with its per-stream state; InstallationNotFound when there is none."""
    async with unit_of_work(rt.sessions) as session:
        inst = await service.require(session, company_id)
        return await views.installation_detail(session, rt, inst)


async def list_runs(
    rt: Runtime, *, company_id: int | None, status: RunStatus | None, limit: int
) -> list[SyncRunSummary]:
    """Run history newest first, as `GET /admin/v1/syncs` lists it."""
    async with unit_of_work(rt.sessions) as session:
        runs = await queue.history(session, company_id=company_id, status=status, limit=limit)
        return [SyncRunSummary.of(run) for run in runs]


async def show_run(rt: Runtime, run_id: str) -> SyncRunView:
    """One run with its per-stream figures; RunNotFound when there is none."""
    async with unit_of_work(rt.sessions) as session:
        run = await queue.get(session, run_id)
        if run is None:
            raise queue.RunNotFound(f"sync run {run_id!r} does not exist")
        return SyncRunView.of(run)


async def trigger_run(rt: Runtime, company_id: int, *, full_refresh: bool) -> SyncQueued:
    """Queues a run now, as `POST /admin/v1/installations/{id}/syncs` does; a running service
    (role `all` or `worker`) claims it at its next scheduler tick."""
    async with unit_of_work(rt.sessions) as session:
        inst = await service.require(session, company_id)
        service.ensure_syncable(inst)
        run, _ = await queue.enqueue(session, company_id, trigger="cli", full_refresh=full_refresh)
        return SyncQueued(run_id=run.id, status=run.status)


async def follow_run(rt: Runtime, run_id: str, *, seconds: float) -> SyncRunView:
    """Waits (polling the database) until the run ends or `seconds` pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        view = await show_run(rt, run_id)
        if view.status not in ACTIVE_STATUSES or loop.time() >= deadline:
            return view
        await asyncio.sleep(FOLLOW_INTERVAL_SECONDS)
