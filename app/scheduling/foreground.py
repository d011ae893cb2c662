"""`connector sync --company-id`: one run in the foreground with a live progress table."""

from __future__ import annotations

import asyncio
import contextlib

from rich.console import Console
from rich.live import Live
from rich.table import Table

from app.core.database import unit_of_work
from app.core.errors import Conflict
from app.core.migrations import upgrade_to_head
from app.core.runtime import build_runtime
from app.core.settings import Settings
from app.installations import service
from app.scheduling import queue
from app.scheduling.worker import Worker
from app.sync.models import RunStatus, SyncRun
from app.sync.schemas import SyncRunView


def progress_table(view: SyncRunView) -> Table:
    """Per-stream progress of a run."""
    table = Table(title=f"sync {view.run_id} of company {view.company_id}: {view.status}")
    for column in ("stream", "status", "units", "records", "deleted", "requests", "seconds"):
        table.add_column(column, justify="left" if column in ("stream", "status") else "right")
    for name, stats in view.streams.items():
        table.add_row(
            name,
            stats.status,
            f"{stats.units_done}/{stats.units_total}",
            str(stats.records_written),
            str(stats.records_deleted),
            str(stats.requests),
            f"{stats.duration_seconds:.1f}",
        )
    return table


async def run_foreground(settings: Settings, company_id: int, *, full_refresh: bool) -> bool:
    """Queues and runs one sync here; returns True when it succeeded."""
    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    rt = build_runtime(settings)
    console = Console(stderr=True)
    try:
        async with unit_of_work(rt.sessions) as session:
            inst = await service.get_or_404(session, company_id)
            service.ensure_syncable(inst)
            run, _ = await queue.enqueue(
                session, company_id, trigger="cli", full_refresh=full_refresh
            )
        async with unit_of_work(rt.sessions) as session:
            claimed = await queue.claim(
                session, rt.worker_id, settings.lease_seconds, run_id=run.id
            )
        if claimed is None:
            raise Conflict(
                f"run {run.id} was taken by a running service; follow it in the admin API"
            )
        task = asyncio.create_task(Worker(rt, concurrency=1).run_one(claimed))
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            while not task.done():
                live.update(progress_table(SyncRunView.of(await _reload(rt, run.id))))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), timeout=1.0)
            final = SyncRunView.of(await _reload(rt, run.id))
            live.update(progress_table(final))
        if final.error:
            console.print(f"error: {final.error}")
        console.print(
            f"{final.records} records, {final.requests} Procore requests, "
            f"{final.duration_seconds or 0:.1f} s"
        )
        return task.result() == RunStatus.succeeded
    finally:
        await rt.aclose()


async def _reload(rt: object, run_id: str) -> SyncRun:
    async with rt.sessions() as session:  # type: ignore[attr-defined]
        return await queue.get(session, run_id)
