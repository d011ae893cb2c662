"""Admin uninstall: the lifecycle's uninstall, then (optionally) a purge of the synced data."""

from __future__ import annotations

import asyncio
import time

from app.core.database import unit_of_work
from app.core.errors import Conflict, ServiceUnavailable
from app.core.logging import get_logger
from app.credentials import service as secrets
from app.destinations import (
    DestinationError,
    InvalidDestinationURL,
    create_destination,
    redact_destination_url,
)
from app.destinations.policy import policy_from_settings
from app.installations import destination, service
from app.installations.models import InstallationStatus
from app.installations.schemas import UninstallAnswer
from app.procore.catalog import STREAMS
from app.runs import queue
from app.runtime import Runtime
from app.webhooks.subscriptions import remove_before_uninstall

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


async def _purge_one(
    rt: Runtime, company_id: int, url: str, signing: tuple[str | None, list[str]]
) -> dict[str, int]:
    """Purges the company from one destination it wrote to; rows deleted per stream."""
    shown = redact_destination_url(url)
    try:
        target = create_destination(
            url,
            policy=policy_from_settings(rt.settings),
            http=rt.http,
            signing_secret=signing[0],
            previous_signing_secrets=signing[1],
        )
    except InvalidDestinationURL as exc:
        raise Conflict(
            f"company {company_id} is uninstalled but its data in {shown} cannot be purged: "
            f"{str(exc).removeprefix('destination_url: ')}",
            details=[{"field": "purge"}],
        ) from None
    try:
        await target.open()
        return await target.purge(company_id, STREAMS.keys())
    except (DestinationError, OSError, ValueError) as exc:
        raise ServiceUnavailable(
            f"company {company_id} is uninstalled but its data in {shown} could not be purged: "
            f"{exc}; asking again is safe",
            details=[{"field": "purge"}],
        ) from None
    finally:
        await target.close()


async def uninstall_company(rt: Runtime, company_id: int, *, purge: bool) -> UninstallAnswer:
    """Uninstalls a company and, with `purge`, deletes its data from every destination it
    wrote to (never the default destination when it wrote none) and every remaining secret."""
    async with unit_of_work(rt.sessions) as session:
        await service.require(session, company_id)
    await remove_before_uninstall(rt, company_id)  # while its credentials still exist
    async with unit_of_work(rt.sessions) as session:
        await service.uninstall(session, rt.keyring, company_id, reason=service.REASON_ADMIN)
    rt.cancel_local_runs(company_id=company_id)
    rt.wake_scheduler()
    deleted: dict[str, int] = {}
    if purge:
        await _wait_until_stopped(rt, company_id)
        async with unit_of_work(rt.sessions) as session:
            targets = await destination.destinations_written(session, rt.keyring, company_id)
            signing = await destination.signing_secrets(session, rt.keyring, company_id)
        for url in targets:
            for stream, rows in (await _purge_one(rt, company_id, url, signing)).items():
                deleted[stream] = deleted.get(stream, 0) + rows
            # Done with this one: asking again after a later failure does not come back here.
            async with unit_of_work(rt.sessions) as session:
                await destination.forget_destination(session, rt.keyring, company_id, url)
        async with unit_of_work(rt.sessions) as session:
            await secrets.destroy_secrets(session, company_id)
        log.info("company purged", company_id=company_id, rows=sum(deleted.values()))
    return UninstallAnswer(
        company_id=company_id,
        status=InstallationStatus.uninstalled,
        purged=purge,
        deleted_rows=deleted,
    )
