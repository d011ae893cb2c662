"""Which incidents are open, and telling people once per incident.

Conditions (issue 16 item 4): runs failing N times in a row, credentials rejected, the
installation disconnected or uninstalled, a delete guard trip. Each is an incident that opens
once, is sent once, and closes when its condition clears (a successful run, new credentials,
the installation back). State lives in `alert_incidents`, so several processes agree.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import notify, repository
from app.alerts.models import AlertIncident
from app.core.database import unit_of_work, utcnow
from app.core.logging import get_logger
from app.installations import service as installations
from app.installations.models import InstallationStatus
from app.runs import queue
from app.runs.models import RunStatus
from app.runs.progress import RunProgress
from app.runtime import Runtime

log = get_logger(__name__)
# Lifecycle changes older than this are not news: the first sweep after an upgrade stays quiet.
SWEEP_WINDOW = timedelta(days=1)
LOST_STATUSES = ("uninstalled", "disconnected")


class IncidentKind(StrEnum):
    """The conditions people are told about."""

    run_failures = "run_failures"
    credentials_rejected = "credentials_rejected"
    installation_lost = "installation_lost"
    delete_guard = "delete_guard"


TITLES = {
    IncidentKind.run_failures: "Sync runs keep failing",
    IncidentKind.credentials_rejected: "Procore rejected the credentials",
    IncidentKind.installation_lost: "Installation disconnected or uninstalled",
    IncidentKind.delete_guard: "Delete guard tripped",
}
LIFECYCLE = (IncidentKind.credentials_rejected, IncidentKind.installation_lost)
# Verdict of one condition: a summary opens (or keeps) the incident, RESOLVED closes it, None
# leaves it as it is.
RESOLVED = ""


async def after_run(
    rt: Runtime, company_id: int, status: RunStatus, progress: RunProgress | None
) -> None:
    """The worker's hook when a run has ended: evaluates this company, sweeps the others.

    Never raises: an alert problem must not change how a run ends.
    """
    try:
        async with unit_of_work(rt.sessions) as session:
            await _evaluate_runs(session, rt, company_id, status, progress)
            await _evaluate_lifecycle(session, company_id)
            companies = await _sweep(session)
        await deliver(rt, companies | {company_id})
    except Exception as exc:
        log.warning("alerts not evaluated", error=type(exc).__name__, detail=str(exc)[:200])


async def after_change(rt: Runtime, company_id: int) -> None:
    """An operator changed an installation (uninstall, new credentials): lifecycle alerts."""
    try:
        async with unit_of_work(rt.sessions) as session:
            await _evaluate_lifecycle(session, company_id)
        await deliver(rt, {company_id})
    except Exception as exc:
        log.warning("alerts not evaluated", error=type(exc).__name__, detail=str(exc)[:200])


async def _apply(
    session: AsyncSession, kind: IncidentKind, company_id: int, verdict: str | None
) -> None:
    if verdict is None:
        return
    if verdict == RESOLVED:
        if await repository.resolve(session, kind, company_id):
            log.info("incident resolved", kind=str(kind), company_id=company_id)
        return
    if await repository.open_incident(session, kind, company_id, verdict) is not None:
        log.warning("incident opened", kind=str(kind), company_id=company_id)


async def _evaluate_runs(
    session: AsyncSession,
    rt: Runtime,
    company_id: int,
    status: RunStatus,
    progress: RunProgress | None,
) -> None:
    threshold = rt.settings.alert_failure_threshold
    if status == RunStatus.succeeded:
        await _apply(session, IncidentKind.run_failures, company_id, RESOLVED)
    elif status == RunStatus.failed:
        recent = await queue.history(
            session, company_id=company_id, status=None, limit=threshold * 3
        )
        ended = [r for r in recent if r.status in (RunStatus.succeeded, RunStatus.failed)]
        streak = ended[:threshold]
        if len(streak) == threshold and all(r.status == RunStatus.failed for r in streak):
            error = (streak[0].error or "no error recorded")[:1000]
            summary = f"{threshold} runs in a row failed; the last one: {error}"
            await _apply(session, IncidentKind.run_failures, company_id, summary)
    trips = [
        f"{name}: {stats.delete_guard}"
        for name, stats in (progress.streams.items() if progress else [])
        if stats.delete_guard
    ]
    if trips:
        summary = "deletes held back by the guard; " + "; ".join(trips)
        await _apply(session, IncidentKind.delete_guard, company_id, summary[:2000])
    elif status == RunStatus.succeeded:
        await _apply(session, IncidentKind.delete_guard, company_id, RESOLVED)


async def _evaluate_lifecycle(session: AsyncSession, company_id: int) -> None:
    inst = await installations.get(session, company_id)
    if inst is None:
        return
    rejected = inst.status == InstallationStatus.credentials_invalid
    await _apply(
        session,
        IncidentKind.credentials_rejected,
        company_id,
        (inst.credentials_error or "credentials rejected") if rejected else RESOLVED,
    )
    lost = inst.status in LOST_STATUSES
    reason = f"{inst.status}: {inst.status_reason or 'no reason recorded'}"
    await _apply(session, IncidentKind.installation_lost, company_id, reason if lost else RESOLVED)


async def _sweep(session: AsyncSession) -> set[int]:
    """Lifecycle incidents of installations changed elsewhere (callbacks, discovery)."""
    since = utcnow() - SWEEP_WINDOW
    companies = await repository.recently_unhealthy(session, since)
    companies |= await repository.open_for(session, [str(kind) for kind in LIFECYCLE])
    for company_id in companies:
        await _evaluate_lifecycle(session, company_id)
    return companies


async def deliver(rt: Runtime, company_ids: set[int]) -> int:
    """Sends every open, unsent incident of these companies once; returns how many went out."""
    if not notify.targets_configured(rt.settings):
        return 0
    async with unit_of_work(rt.sessions) as session:
        pending = await repository.undelivered(session, sorted(company_ids))
    sent = 0
    for incident in pending:
        async with unit_of_work(rt.sessions) as session:
            if not await repository.claim(session, incident.id):
                continue  # another process is sending it
            inst = await installations.get(session, incident.company_id)
            name = inst.company_name if inst is not None else None
        if await notify.send(rt.http, rt.settings, f"alert_{incident.id}", payload(incident, name)):
            sent += 1
            continue
        async with unit_of_work(rt.sessions) as session:
            await repository.unclaim(session, incident.id)
    return sent


async def open_incidents(session: AsyncSession, limit: int = 50) -> list[AlertIncident]:
    """Open incidents, newest first (the console's health page)."""
    return await repository.latest_open(session, limit)


def payload(incident: AlertIncident, company_name: str | None) -> dict[str, object]:
    """The JSON an alert webhook receives."""
    kind = IncidentKind(incident.kind)
    who = f"{company_name} ({incident.company_id})" if company_name else str(incident.company_id)
    return {
        "type": "connector.alert",
        "incident_id": incident.id,
        "kind": kind.value,
        "title": f"{TITLES[kind]}: company {who}",
        "company_id": incident.company_id,
        "company_name": company_name,
        "summary": incident.summary,
        "opened_at": incident.opened_at.isoformat(),
    }
