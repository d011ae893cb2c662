"""Gauges computed from the database when /metrics is scraped."""

from __future__ import annotations

from sqlalchemy import func, select

from app.core.database import utcnow
from app.core.metrics import QUEUE_DEPTH, SCHEDULER_LAG
from app.core.runtime import Runtime
from app.installations.models import Installation, InstallationStatus
from app.scheduling import queue


async def refresh_gauges(rt: Runtime) -> None:
    """Sets queue depth and scheduler lag from the database."""
    async with rt.sessions() as session:
        QUEUE_DEPTH.set(await queue.queue_depth(session))
        oldest = await session.scalar(
            select(func.min(Installation.next_run_at)).where(
                Installation.status == InstallationStatus.active,
                Installation.paused.is_(False),
            )
        )
    lag = (utcnow() - oldest).total_seconds() if oldest else 0.0
    SCHEDULER_LAG.set(max(0.0, lag))
