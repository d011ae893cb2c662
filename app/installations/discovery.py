"""Discovery: reconcile installations with Procore's `/companies` list (the source of truth).

Procore sends no install or uninstall notice; a DMSA app learns of installs by listing
`GET /rest/v1.0/companies` with its own token (procore-api.md sections 1 and 11). One listing a
pass; the rules (SPEC section 3, docs/decisions/0013-discovery.md):

- a listed company without an installation is installed (first full sync queued at once);
- a listed, disconnected company is probed when its probe is due, and made active again
  (incremental sync) once it answers;
- a company absent from two consecutive complete listings is uninstalled, unless it was
  created or changed after the listing began;
- an empty listing, or one that drops more than half of the live installations at once, is
  held: it uninstalls nobody, and says so in the logs, a metric and `/readyz`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import unit_of_work, utcnow
from app.core.errors import ServiceUnavailable
from app.core.logging import get_logger
from app.installations import disconnects, repository, service
from app.installations.environments import app_credentials, credentials_for, parse_environment
from app.installations.errors import CompanyNotListed
from app.installations.metrics import DISCOVERY_HELD, DISCOVERY_PASSES
from app.installations.models import Installation, InstallationStatus
from app.procore import (
    AppNotConnectedError,
    ProcoreAuthError,
    ProcoreCredentials,
    ProcoreError,
    ProcoreForbiddenError,
)
from app.runtime import Runtime

log = get_logger(__name__)
PROBE_PATH = "/rest/v1.1/projects"
PROBE_CONCURRENCY = 8
ABSENT_LISTINGS_TO_UNINSTALL = 2


@dataclass
class DiscoveryResult:
    """What one pass changed."""

    listed: int = 0
    installed: list[int] = field(default_factory=list)
    uninstalled: list[int] = field(default_factory=list)
    reconnected: list[int] = field(default_factory=list)
    still_disconnected: list[int] = field(default_factory=list)
    held: str | None = None
    skipped: bool = False  # another process ran a pass moments ago


def _judged_by_app(inst: Installation, creds: ProcoreCredentials, environment: str) -> bool:
    """Only installations of the listing's environment that run on the app's own credentials
    are the listing's to judge."""
    own = not inst.client_id or inst.client_id == creds.client_id
    return own and inst.environment == environment


def held_reason(listed: int, live: int, absent: int) -> str | None:
    """Why a complete listing must uninstall nobody, or None for a normal listing."""
    if listed == 0 and live:
        return "the /companies listing was empty"
    if absent * 2 > live:
        return f"the /companies listing dropped {absent} of {live} live installations at once"
    return None


async def _begin_pass(rt: Runtime, now: datetime, min_gap_seconds: float) -> bool:
    """Claims this pass for this process; False when another process began one too recently
    (every process runs the job; one listing per interval is enough)."""
    async with unit_of_work(rt.sessions) as session:
        state = await repository.discovery_state(session, for_update=True)
        last = state.pass_started_at
        if last is not None and timedelta(0) <= now - last < timedelta(seconds=min_gap_seconds):
            return False
        state.pass_started_at = now
    return True


async def _list(rt: Runtime, creds: ProcoreCredentials, env: str) -> dict[int, str]:
    """One complete listing, with a known company as `Procore-Company-Id` when there is one."""
    async with unit_of_work(rt.sessions) as session:
        header_company = await repository.smallest_active_app_company_id(session, env)
    try:
        companies = await rt.procore.list_companies(creds, company_id=header_company)
    except (ProcoreForbiddenError, ProcoreAuthError) as exc:
        if header_company is None:
            raise
        # That company may have just removed the app: one listing without the header, so a
        # stale id can never stop discovery from noticing that it left.
        log.warning(
            "discovery listing refused with a company header; listing without it",
            company_id=header_company,
            error=exc.message[:200],
        )
        companies = await rt.procore.list_companies(creds)
    return {int(c["id"]): str(c.get("name") or "") for c in companies if _has_id(c)}


def _has_id(company: Any) -> bool:
    return isinstance(company, dict) and isinstance(company.get("id"), int)


async def discover(rt: Runtime, *, min_gap_seconds: float = 0) -> DiscoveryResult:
    """One discovery pass: list the companies, reconcile the installations, probe the
    disconnected ones that are due. Raises when the listing fails (nothing is changed then)."""
    started = utcnow()
    if not await _begin_pass(rt, started, min_gap_seconds):
        return DiscoveryResult(skipped=True)
    main_env = rt.settings.procore_env
    if rt.settings.app_credentials_for(main_env) is None:
        # No app pair: nothing to list; installations on their own pairs are still probed.
        result = DiscoveryResult()
        await _probe_disconnected(rt, None, {}, started, result)
        return result
    creds = app_credentials(rt, main_env)
    try:
        listed = await _list(rt, creds, main_env.value)
    except Exception:
        DISCOVERY_PASSES.labels("failed").inc()
        raise
    result = DiscoveryResult(listed=len(listed))
    async with unit_of_work(rt.sessions) as session:
        await _reconcile(session, rt, creds, listed, started, result)
    await _probe_disconnected(rt, creds, listed, started, result)
    DISCOVERY_PASSES.labels("held" if result.held else "normal").inc()
    DISCOVERY_HELD.set(1 if result.held else 0)
    if result.installed or result.uninstalled or result.reconnected:
        log.info(
            "discovery reconciled",
            installed=result.installed,
            uninstalled=result.uninstalled,
            reconnected=result.reconnected,
        )
        rt.wake_scheduler()
    return result


async def _reconcile(
    session: AsyncSession,
    rt: Runtime,
    creds: ProcoreCredentials,
    listed: dict[int, str],
    started: datetime,
    result: DiscoveryResult,
) -> None:
    env = rt.settings.procore_env.value
    everyone = await repository.all_installations(session)
    known = {inst.company_id: inst for inst in everyone if _judged_by_app(inst, creds, env)}
    others = {inst.company_id for inst in everyone} - set(known)
    live = [inst for inst in known.values() if inst.status != InstallationStatus.uninstalled]
    absent = [inst for inst in live if inst.company_id not in listed]
    for company_id, name in sorted(listed.items()):
        inst = known.get(company_id)
        if inst is None and company_id in others:
            continue  # installed on its own credentials or in another environment
        returning = (
            inst is not None
            and inst.status == InstallationStatus.uninstalled
            and inst.status_reason == service.REASON_LEFT_COMPANIES
        )
        if inst is None or returning:
            await service.install(
                session, rt, company_id=company_id, company_name=name or None, source="discovery"
            )
            result.installed.append(company_id)
        elif inst.absent_listings:
            inst.absent_listings = 0
    result.held = held_reason(len(listed), len(live), len(absent))
    state = await repository.discovery_state(session, for_update=True)
    state.listed, state.pass_finished_at = len(listed), utcnow()
    if result.held:
        if state.held_reason is None:
            state.held_since = started
        state.held_reason = result.held[:255]
        log.warning(
            "discovery listing held: nobody is uninstalled",
            reason=result.held,
            absent=sorted(inst.company_id for inst in absent)[:50],
        )
        return
    state.held_reason, state.held_since = None, None
    for inst in absent:
        await _count_absence(session, inst, started, result)
    for company_id, inst in sorted(known.items()):
        if (
            company_id not in listed
            and inst.status == InstallationStatus.uninstalled
            and inst.status_reason != service.REASON_LEFT_COMPANIES
        ):
            # It has now left the list: a later reappearance is a new installation.
            inst.status_reason = service.REASON_LEFT_COMPANIES


async def _count_absence(
    session: AsyncSession, inst: Installation, started: datetime, result: DiscoveryResult
) -> None:
    """One more complete listing without this company; the second one uninstalls it."""
    current = await repository.get(session, inst.company_id, for_update=True)
    if current is None or current.status == InstallationStatus.uninstalled:
        return
    if current.updated_at >= started or current.created_at >= started:
        return  # created or changed after this listing began: not this pass's to judge
    current.absent_listings = (current.absent_listings or 0) + 1
    if current.absent_listings >= ABSENT_LISTINGS_TO_UNINSTALL:
        await service.uninstall(session, current.company_id, reason=service.REASON_LEFT_COMPANIES)
        result.uninstalled.append(current.company_id)


async def _probe_disconnected(
    rt: Runtime,
    app_creds: ProcoreCredentials | None,
    listed: dict[int, str],
    now: datetime,
    result: DiscoveryResult,
) -> None:
    """Probes disconnected companies whose probe is due, with one cheap call each: those the
    listing still shows, and those on their own credentials (no listing judges them)."""
    env = rt.settings.procore_env.value
    async with unit_of_work(rt.sessions) as session:
        due = [
            (inst.company_id, await credentials_for(session, rt, inst))
            for inst in await repository.all_installations(session)
            if inst.status == InstallationStatus.disconnected
            and (inst.probe_at is None or inst.probe_at <= now)
            and (
                inst.company_id in listed
                or app_creds is None
                or not _judged_by_app(inst, app_creds, env)
            )
        ]
    if not due:
        return
    gate = asyncio.Semaphore(PROBE_CONCURRENCY)
    answered: set[int] = set()

    async def probe(company_id: int, creds: ProcoreCredentials) -> None:
        async with gate:
            if await answers(rt, creds, company_id):
                answered.add(company_id)

    await asyncio.gather(*(probe(company_id, creds) for company_id, creds in due))
    interval = rt.settings.discovery_interval_seconds
    async with unit_of_work(rt.sessions) as session:
        for company_id, _ in due:
            if company_id in answered:
                await disconnects.reconnect(session, company_id, now=now)
                result.reconnected.append(company_id)
            else:
                await disconnects.probe_failed(
                    session, company_id, discovery_interval_seconds=interval, now=now
                )
                result.still_disconnected.append(company_id)


async def answers(rt: Runtime, creds: ProcoreCredentials, company_id: int) -> bool:
    """Whether a company answers one cheap call (False: still not connected, or failing)."""
    try:
        await rt.procore.get(
            creds,
            PROBE_PATH,
            company_id=company_id,
            params={"company_id": company_id, "page": 1, "per_page": 1},
        )
    except AppNotConnectedError:
        return False
    except ProcoreError as exc:
        # Permissions or an outage: not proof of a reconnect; probed again later.
        log.info("discovery probe failed", company_id=company_id, error=exc.message[:200])
        return False
    return True


async def install_listed_company(
    session: AsyncSession, rt: Runtime, company_id: int, environment: str | None
) -> tuple[Installation, bool]:
    """Creates or re-activates an installation for a company that `/companies` lists
    (operators' `POST /admin/v1/installations`). Returns it and whether it was created."""
    env = parse_environment(environment) or rt.settings.procore_env
    creds = app_credentials(rt, env)
    try:
        names = await _list(rt, creds, env.value)
    except ProcoreError as exc:
        raise ServiceUnavailable(f"could not list /companies in Procore: {exc.message}") from None
    if company_id not in names:
        raise CompanyNotListed(
            f"company {company_id} is not in the app's /companies listing in Procore's "
            f"{env.value} environment: a company admin installs the app in Procore "
            "(Company Admin > App Management) first",
            details=[{"field": "company_id", "company_id": company_id}],
        )
    existed = await repository.get(session, company_id) is not None
    inst, _ = await service.install(
        session,
        rt,
        company_id=company_id,
        company_name=names[company_id] or None,
        environment=env.value,
        source="admin",
    )
    return inst, not existed


async def held_listing(rt: Runtime) -> dict[str, str] | None:
    """The held discovery listing (`/readyz` details), or None while listings are normal."""
    async with unit_of_work(rt.sessions) as session:
        state = await repository.discovery_state(session)
        if state.held_reason is None:
            return None
        since = state.held_since.isoformat() if state.held_since else ""
        return {
            "status": "held: nobody is uninstalled until a normal listing returns",
            "reason": state.held_reason,
            "since": since,
        }
