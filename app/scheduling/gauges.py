"""Gauges computed from the database when /metrics is scraped."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from app.core.database import utcnow
from app.core.metrics import QUEUE_DEPTH, SCHEDULE_PERIOD, SCHEDULER_LAG, SYNC_LAST_SUCCESS
from app.installations import repository
from app.installations.schedules import parse_schedule
from app.runs import queue
from app.runtime import Runtime


async def refresh_gauges(rt: Runtime) -> None:
    """Sets queue depth, scheduler lag and the per-installation freshness gauges."""
    now = utcnow()
    async with rt.sessions() as session:
        depth = await queue.queue_depth(session)
        rows = await repository.freshness(session)
    QUEUE_DEPTH.set(depth)
    # Rebuilt on each scrape so uninstalled or paused installations drop out of the series.
    SYNC_LAST_SUCCESS.clear()
    SCHEDULE_PERIOD.clear()
    lag = 0.0
    for company_id, schedule, created_at, next_run_at, succeeded_at in rows:
        label = str(company_id)
        # func.max() loses the column's UTC type on SQLite; the value is UTC either way.
        last = succeeded_at if succeeded_at is not None else created_at
        SYNC_LAST_SUCCESS.labels(label).set(_epoch(last))
        with contextlib.suppress(ValueError):
            SCHEDULE_PERIOD.labels(label).set(parse_schedule(schedule).period)
        if next_run_at is not None:
            lag = max(lag, (now - next_run_at).total_seconds())
    SCHEDULER_LAG.set(max(0.0, lag))


def _epoch(value: object) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
