"""Discovery: reconcile installations with Procore's `/companies` list (the source of truth)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from app.core.database import unit_of_work
from app.core.logging import get_logger
from app.installations import repository, service
from app.installations.models import Installation, InstallationStatus
from app.procore import AppNotConnectedError, ProcoreCredentials, ProcoreError
from app.runtime import Runtime

log = get_logger(__name__)
PROBE_PATH = "/rest/v1.1/projects"
PROBE_CONCURRENCY = 8


@dataclass
class DiscoveryResult:
    """What one reconcile changed."""

    listed: int = 0
    installed: list[int] = field(default_factory=list)
    uninstalled: list[int] = field(default_factory=list)


def _judged_by_app(inst: Installation, creds: ProcoreCredentials) -> bool:
    """Only installations that run on the app's own credentials are the app's to judge."""
    return not inst.client_id or inst.client_id == creds.client_id


async def _not_connected(
    rt: Runtime, creds: ProcoreCredentials, company_ids: list[int]
) -> set[int]:
    """Listed companies that answer 403 "App is not connected to this company" to one cheap call."""
    gate = asyncio.Semaphore(PROBE_CONCURRENCY)
    found: set[int] = set()

    async def probe(company_id: int) -> None:
        async with gate:
            try:
                await rt.procore.get(
                    creds,
                    PROBE_PATH,
                    company_id=company_id,
                    params={"company_id": company_id, "page": 1, "per_page": 1},
                )
            except AppNotConnectedError:
                found.add(company_id)
            except ProcoreError as exc:
                # Anything else is the sync's business (permissions, outages); not an uninstall.
                log.info("discovery probe failed", company_id=company_id, error=exc.message[:200])

    await asyncio.gather(*(probe(company_id) for company_id in company_ids))
    return found


async def discover(rt: Runtime, *, probe: bool = True) -> DiscoveryResult:
    """Lists the companies the app is installed in and reconciles the installations with it.

    New companies are installed with the defaults; vanished ones and listed ones that answer
    "not connected" are uninstalled. An uninstalled company is re-installed only after it left
    the list and came back (or by an `installation.created` callback), so a disconnected
    company that stays listed is not called again.
    """
    creds = service.app_credentials(rt)
    companies = await rt.procore.list_companies(creds)
    listed = {int(c["id"]): str(c.get("name") or "") for c in companies if "id" in c}
    result = DiscoveryResult(listed=len(listed))
    async with unit_of_work(rt.sessions) as session:
        known = {inst.company_id: inst for inst in await repository.all_installations(session)}
    active_listed = [
        company_id
        for company_id, inst in known.items()
        if company_id in listed
        and inst.status != InstallationStatus.uninstalled
        and _judged_by_app(inst, creds)
    ]
    disconnected = await _not_connected(rt, creds, active_listed) if probe else set()
    async with unit_of_work(rt.sessions) as session:
        for company_id, name in listed.items():
            inst = known.get(company_id)
            returning = (
                inst is not None
                and inst.status == InstallationStatus.uninstalled
                and inst.status_reason == service.REASON_LEFT_COMPANIES
            )
            if inst is None or returning:
                await service.install(
                    session,
                    rt,
                    company_id=company_id,
                    company_name=name or None,
                    source="discovery",
                )
                result.installed.append(company_id)
        for company_id in sorted(disconnected):
            await service.uninstall(
                session, rt.keyring, company_id, reason=service.REASON_NOT_CONNECTED
            )
            result.uninstalled.append(company_id)
        for company_id, inst in sorted(known.items()):
            if company_id in listed or not _judged_by_app(inst, creds):
                continue
            if inst.status != InstallationStatus.uninstalled:
                await service.uninstall(
                    session, rt.keyring, company_id, reason=service.REASON_LEFT_COMPANIES
                )
                result.uninstalled.append(company_id)
            elif inst.status_reason != service.REASON_LEFT_COMPANIES:
                # It has now left the list: a later reappearance is a new installation.
                current = await repository.get(session, company_id, for_update=True)
                if current is not None:
                    current.status_reason = service.REASON_LEFT_COMPANIES
    if result.installed or result.uninstalled:
        log.info("discovery reconciled", installed=result.installed, uninstalled=result.uninstalled)
        rt.wake_scheduler()
    return result
