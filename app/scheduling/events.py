"""The webhook side of the scheduler: applying events, continuing deferred work, keeping
subscriptions, pruning and gauges (see app/webhooks)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from app.core.database import utcnow
from app.core.logging import get_logger
from app.runtime import Runtime
from app.webhooks import applier, subscriptions
from app.webhooks import service as webhooks

log = get_logger(__name__)

CONTINUE_EVERY_SECONDS = 2.0
MAINTENANCE_EVERY_SECONDS = 60.0
GAUGES_EVERY_SECONDS = 300.0
IDLE_POLL_SECONDS = 5.0


class EventLoop:
    """Polls the inbox (events wait at most one poll beyond their coalescing window) and
    runs the slower jobs on their own cadence."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.finished_mark = utcnow() - timedelta(hours=1)
        self._last: dict[str, float] = {}

    @property
    def poll_seconds(self) -> float:
        """How often the inbox is looked at: quickly when webhooks are on."""
        if self.rt.settings.public_url is None:
            return IDLE_POLL_SECONDS
        return max(0.1, min(1.0, self.rt.settings.webhook_coalesce_seconds / 4))

    async def run(self) -> None:
        """Forever: one step, then a pause."""
        while True:
            await self.step()
            await asyncio.sleep(self.poll_seconds)

    def _due(self, name: str, every: float) -> bool:
        now = time.monotonic()
        if now - self._last.get(name, -1e12) < every:
            return False
        self._last[name] = now
        return True

    async def step(self) -> None:
        """Applies due events; now and then continues deferred work, prunes and sets gauges."""
        try:
            await applier.apply_pass(self.rt)
            if self._due("continue", CONTINUE_EVERY_SECONDS):
                self.finished_mark = await applier.note_finished_runs(self.rt, self.finished_mark)
                await applier.continue_deferred(self.rt)
            if self._due("maintenance", MAINTENANCE_EVERY_SECONDS):
                await webhooks.prune(self.rt)
            if self._due("gauges", GAUGES_EVERY_SECONDS):
                await webhooks.refresh_gauges(self.rt)
        except Exception as exc:
            log.warning("webhook event pass failed", error=f"{type(exc).__name__}: {exc}"[:300])


async def subscribe_due(rt: Runtime) -> None:
    """Reconciles due webhook subscriptions, logging (not raising) failures."""
    try:
        await subscriptions.reconcile_due(rt)
    except Exception as exc:
        log.warning("webhook subscriptions failed", error=f"{type(exc).__name__}: {exc}"[:300])
