"""Discovery: reconcile installations with Procore's `/companies` list (the source of truth)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core.database import unit_of_work
from app.core.logging import get_logger
from app.core.runtime import Runtime
from app.installations import repository, service

log = get_logger(__name__)


@dataclass
class DiscoveryResult:
    """What one reconcile changed."""

    listed: int = 0
    installed: list[int] = field(default_factory=list)
    uninstalled: list[int] = field(default_factory=list)


async def discover(rt: Runtime) -> DiscoveryResult:
    """Lists the companies the app is installed in; installs new ones, uninstalls vanished ones."""
    creds = service.app_credentials(rt)
    companies = await rt.procore.list_companies(creds)
    listed = {int(c["id"]): str(c.get("name") or "") for c in companies if "id" in c}
    result = DiscoveryResult(listed=len(listed))
    async with unit_of_work(rt.sessions) as session:
        known = await repository.active_company_ids(session)
        for company_id, name in listed.items():
            if company_id not in known:
                await service.install(
                    session,
                    rt,
                    company_id=company_id,
                    company_name=name or None,
                    source="discovery",
                )
                result.installed.append(company_id)
        for company_id in sorted(known - set(listed)):
            inst = await repository.get(session, company_id)
            # Only installations that run on the app's own credentials are the app's to judge.
            if inst is None or (inst.client_id and inst.client_id != creds.client_id):
                continue
            await service.uninstall(session, company_id, reason="company left /companies")
            result.uninstalled.append(company_id)
    if result.installed or result.uninstalled:
        log.info("discovery reconciled", installed=result.installed, uninstalled=result.uninstalled)
        rt.wake_scheduler()
    return result
