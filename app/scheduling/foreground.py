"""`connector sync --company-id`: one run in the foreground with a live progress table."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from app.core.database import unit_of_work
from app.core.errors import Conflict
from app.core.settings import Settings
from app.installations import service
from app.runs import leases, queue
from app.runs.models import RunStatus
from app.runs.schemas import SyncRunView
from app.runtime import Runtime, build_runtime
from app.scheduling.worker import ActiveRun, StopReason, Worker

COLUMNS = ("stream", "status", "units", "records", "deleted", "requests", "seconds")


def progress_table(title: str, streams: dict[str, dict[str, Any]]) -> Table:
    """Per-stream progress of a run (`streams` as in the run's stats)."""
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("stream", "status") else "right")
    for name, stats in streams.items():
        table.add_row(
            name,
            str(stats.get("status", "")),
            f"{stats.get('units_done', 0)}/{stats.get('units_total', 0)}",
            str(stats.get("records_written", 0)),
            str(stats.get("records_deleted", 0)),
            str(stats.get("requests", 0)),
            f"{float(stats.get('duration_seconds') or 0):.1f}",
        )
    return table


def _live_table(active: ActiveRun) -> Table:
    streams = active.ctx.snapshot().streams if active.ctx is not None else {}
    title = f"sync {active.run.id} of company {active.run.company_id}: running"
    return progress_table(title, {name: stats.model_dump() for name, stats in streams.items()})


async def run_foreground(settings: Settings, company_id: int, *, full_refresh: bool) -> bool:
    """Queues and runs one sync here; returns True when it succeeded.

    Ctrl-C (or SIGTERM) cancels the run at its next page; its checkpoints are kept. The
    database must be migrated already (the CLI checks, and migrates only when asked).
    """
    rt = build_runtime(settings)
    console = Console(stderr=True)
    try:
        active = await _claim_and_start(rt, company_id, full_refresh=full_refresh)
        assert active.task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, active.request_stop, StopReason.cancel)
        with Live(console=console, refresh_per_second=4, transient=True) as live:
            while not active.task.done():
                live.update(_live_table(active))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(active.task), timeout=0.5)
        async with rt.sessions() as session:
            row = await queue.get(session, active.run.id)
            assert row is not None  # runs are never deleted while one is followed
            final = SyncRunView.of(row)
        streams = {name: stats.model_dump() for name, stats in final.streams.items()}
        console.print(progress_table(f"sync {final.run_id}: {final.status}", streams))
        if final.error:
            console.print(f"error: {final.error}")
        console.print(
            f"{final.records} records, {final.requests} Procore requests, "
            f"{final.duration_seconds or 0:.1f} s"
        )
        return active.task.result() == RunStatus.succeeded
    finally:
        await rt.aclose()


async def _claim_and_start(rt: Runtime, company_id: int, *, full_refresh: bool) -> ActiveRun:
    async with unit_of_work(rt.sessions) as session:
        inst = await service.require(session, company_id)
        service.ensure_syncable(inst)
        run, _ = await queue.enqueue(session, company_id, trigger="cli", full_refresh=full_refresh)
    async with unit_of_work(rt.sessions) as session:
        claimed = await leases.claim(
            session, rt.worker_id, rt.settings.lease_seconds, run_id=run.id
        )
    if claimed is None:
        raise Conflict(f"run {run.id} was taken by a running service; follow it in the admin API")
    return Worker(rt, concurrency=1).start(claimed.run)
