"""Disconnect is not uninstall: a listed company that answers 403 "App is not connected to
this company" keeps its credentials, is not synced, and is probed at a growing interval until
it answers again (procore-api.md section 11; SPEC section 3)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.core.logging import get_logger
from app.installations import repository
from app.installations.models import Installation, InstallationStatus
from app.installations.schedules import parse_schedule
from app.runs import queue
from app.runs.queue import RunAlreadyActive

log = get_logger(__name__)

REASON_NOT_CONNECTED = "app not connected"
MAX_PROBE_INTERVAL_SECONDS = 3600
MIN_PROBE_INTERVAL_SECONDS = 1


def first_probe_interval(discovery_interval_seconds: int) -> int:
    """The first probe comes one discovery pass later (an hour when discovery is off)."""
    if discovery_interval_seconds <= 0:
        return MAX_PROBE_INTERVAL_SECONDS
    return max(
        MIN_PROBE_INTERVAL_SECONDS, min(discovery_interval_seconds, MAX_PROBE_INTERVAL_SECONDS)
    )


def next_probe_interval(current: int | None, discovery_interval_seconds: int) -> int:
    """Doubles the probe interval, up to hourly."""
    base = current or first_probe_interval(discovery_interval_seconds)
    return min(base * 2, MAX_PROBE_INTERVAL_SECONDS)


async def mark_disconnected(
    session: AsyncSession,
    company_id: int,
    *,
    detail: str,
    discovery_interval_seconds: int,
    now: datetime | None = None,
) -> Installation | None:
    """An active installation answered "not connected": no syncs, credentials kept, probed."""
    inst = await repository.get(session, company_id, for_update=True)
    if inst is None or inst.status not in (
        InstallationStatus.active,
        InstallationStatus.credentials_invalid,
    ):
        return inst
    now = now or utcnow()
    interval = first_probe_interval(discovery_interval_seconds)
    inst.status = InstallationStatus.disconnected
    inst.status_reason = f"{REASON_NOT_CONNECTED}: {detail}"[:255]
    inst.next_run_at = None
    inst.probe_interval_seconds = interval
    inst.probe_at = now + timedelta(seconds=interval)
    await session.flush()
    log.warning("company disconnected the app; probing it", company_id=company_id)
    return inst


async def probe_failed(
    session: AsyncSession, company_id: int, *, discovery_interval_seconds: int, now: datetime
) -> None:
    """Still not connected: the next probe waits twice as long (at most an hour)."""
    inst = await repository.get(session, company_id, for_update=True)
    if inst is None or inst.status != InstallationStatus.disconnected:
        return
    interval = next_probe_interval(inst.probe_interval_seconds, discovery_interval_seconds)
    inst.probe_interval_seconds = interval
    inst.probe_at = now + timedelta(seconds=interval)


async def reconnect(
    session: AsyncSession,
    company_id: int,
    *,
    trigger: str = "reconnect",
    now: datetime | None = None,
) -> Installation | None:
    """A disconnected company answers again: active, with an incremental sync queued now.

    Its cursors were kept, so only what changed while it was disconnected is read.
    """
    inst = await repository.get(session, company_id, for_update=True)
    if inst is None or inst.status != InstallationStatus.disconnected:
        return inst
    now = now or utcnow()
    inst.status = InstallationStatus.active
    inst.status_reason = None
    inst.probe_at = None
    inst.probe_interval_seconds = None
    inst.next_run_at = parse_schedule(inst.schedule).next_run(now, company_id)
    with contextlib.suppress(RunAlreadyActive):  # a run is going already: it reads the changes
        await queue.enqueue(session, company_id, trigger=trigger, full_refresh=False)
    await session.flush()
    log.info("company reconnected the app; incremental sync queued", company_id=company_id)
    return inst
