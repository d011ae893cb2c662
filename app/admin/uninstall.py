"""Admin uninstall: the lifecycle's uninstall, then (optionally) a purge of the synced data."""

from __future__ import annotations

import asyncio
import time

from app.core.database import unit_of_work
from app.core.errors import Conflict, ServiceUnavailable
from app.core.logging import get_logger
from app.core.runtime import Runtime
from app.credentials import service as secrets
from app.credentials.models import SecretKind
from app.destinations import DestinationError, create_destination
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
        destination_url = await service.destination_url_for(session, rt, inst)
        signing_secret = await secrets.get_secret(
            session, rt.keyring, company_id, SecretKind.destination_signing_secret
        )
        await service.uninstall(session, rt.keyring, company_id, reason=service.REASON_ADMIN)
    rt.cancel_local_runs(company_id=company_id)
    rt.wake_scheduler()
    deleted: dict[str, int] = {}
    if purge:
        await _wait_until_stopped(rt, company_id)
        destination = create_destination(
            destination_url, http=rt.http, signing_secret=signing_secret
        )
        try:
            await destination.open()
            deleted = await destination.purge(company_id)
        except DestinationError as exc:
            raise ServiceUnavailable(
                f"company {company_id} is uninstalled but its data could not be purged: {exc}; "
                "asking again is safe",
                details=[{"field": "purge"}],
            ) from None
        finally:
            await destination.close()
        async with unit_of_work(rt.sessions) as session:
            await secrets.destroy_secrets(session, company_id)
        log.info("company purged", company_id=company_id, rows=sum(deleted.values()))
    return UninstallAnswer(
        company_id=company_id,
        status=InstallationStatus.uninstalled,
        purged=purge,
        deleted_rows=deleted,
    )
