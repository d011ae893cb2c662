"""Admin uninstall: the lifecycle's uninstall, then (optionally) a purge of the synced rows."""

from __future__ import annotations

import asyncio
import time

from app.core.database import unit_of_work
from app.core.errors import Conflict
from app.core.logging import get_logger
from app.core.runtime import Runtime
from app.credentials import service as secrets
from app.installations import purge as purging
from app.installations import service
from app.installations.models import InstallationStatus
from app.installations.schemas import UninstallAnswer
from app.scheduling import queue

log = get_logger(__name__)
STOP_WAIT_SECONDS = 30.0


async def _wait_until_stopped(rt: Runtime, company_id: int) -> None:
    """Waits for a cancelled running sync to stop, so it cannot write after the purge."""
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while True:
        async with unit_of_work(rt.sessions) as session:
            if await queue.active_run(session, company_id) is None:
                return
        if time.monotonic() > deadline:
            raise Conflict(
                f"company {company_id} is uninstalled but its sync has not stopped yet; "
                "ask for the purge again in a moment",
                details=[{"field": "purge"}],
            )
        await asyncio.sleep(0.2)


async def uninstall_company(rt: Runtime, company_id: int, *, purge: bool) -> UninstallAnswer:
    """Uninstalls a company and, with `purge`, deletes its rows and every remaining secret."""
    async with unit_of_work(rt.sessions) as session:
        inst = await service.get_or_404(session, company_id)
        destination = await service.destination_url_for(session, rt, inst)
        if purge:
            purging.sql_target(destination)  # refuse before changing anything
        await service.uninstall(session, company_id, reason=service.REASON_ADMIN)
    rt.cancel_local_runs(company_id=company_id)
    rt.wake_scheduler()
    deleted: dict[str, int] = {}
    if purge:
        await _wait_until_stopped(rt, company_id)
        deleted = await purging.purge_company(destination, company_id)
        async with unit_of_work(rt.sessions) as session:
            await secrets.destroy_secrets(session, company_id)
        log.info("company purged", company_id=company_id, rows=sum(deleted.values()))
    return UninstallAnswer(
        company_id=company_id,
        status=InstallationStatus.uninstalled,
        purged=purge,
        deleted_rows=deleted,
    )
