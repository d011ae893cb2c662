"""Opening a process's service once its database schema is ready.

`serve --no-migrate` (the Kubernetes and compose layout, where one `connector migrate` Job
owns the schema) may start before that Job has finished, on a database with no tables yet.
Instead of failing on a missing table and restarting in a loop, the process serves `/livez`
(up) and `/readyz` (503: not migrated) and waits; once the schema is at head it checks the
encryption keys and starts the scheduler, and `/readyz` turns 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from app.core.database import unit_of_work
from app.core.logging import get_logger
from app.core.migrations import (
    current_revision,
    head_revision,
    known_revision,
    revisions_after,
)
from app.credentials.service import check_keys
from app.runtime import Runtime
from app.scheduling.scheduler import Scheduler

log = get_logger(__name__)

POLL_SECONDS = 2.0
REMIND_SECONDS = 60.0


async def schema_pending(rt: Runtime) -> list[str]:
    """Revisions the database still needs ([] at head; [] too for a revision this version does
    not know, which a newer release wrote: that is not ours to wait for). Raises when the
    database cannot be reached."""
    current = await current_revision(rt.engine)
    if current is not None and not known_revision(current):
        return []
    return [r.revision for r in revisions_after(current)]


class Startup:
    """Checks the keys and starts the scheduler now, or once the schema reaches head."""

    def __init__(self, rt: Runtime, scheduler: Scheduler | None) -> None:
        self.rt = rt
        self.scheduler = scheduler
        self.opened = False
        self._waiter: asyncio.Task[None] | None = None

    async def open(self, *, wait_for_migrations: bool) -> None:
        """Opens now; with `wait_for_migrations`, a schema behind head is waited for in the
        background (the process serves /livez and a 503 /readyz meanwhile)."""
        if wait_for_migrations:
            pending = await schema_pending(self.rt)
            if pending:
                self._waiter = asyncio.create_task(self._wait(pending), name="wait-migrations")
                return
        await self._open()

    async def _open(self) -> None:
        async with unit_of_work(self.rt.sessions) as session:
            await check_keys(session, self.rt.keyring)
        if self.scheduler is not None:
            await self.scheduler.start()
        self.opened = True

    async def _wait(self, pending: list[str]) -> None:
        log.warning(
            "database schema not at head: waiting for `connector migrate` (not ready until then)",
            pending=pending,
            head=head_revision(),
        )
        reminded = time.monotonic()
        while pending:
            await asyncio.sleep(POLL_SECONDS)
            try:
                pending = await schema_pending(self.rt)
            except Exception as exc:
                pending = pending or ["?"]
                log.warning("database unreachable while waiting", error=str(exc)[:200])
            if pending and time.monotonic() - reminded >= REMIND_SECONDS:
                reminded = time.monotonic()
                log.warning("still waiting for `connector migrate`", pending=pending)
        log.info("database schema at head; starting", head=head_revision())
        try:
            await self._open()
        except Exception as exc:
            # The process stays up and not ready; the line says why (e.g. a wrong key).
            log.error("cannot start after the migrations", error=str(exc)[:300])

    async def close(self) -> None:
        """Stops waiting, then stops the scheduler if it was started."""
        if self._waiter is not None:
            self._waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._waiter
        if self.scheduler is not None and self.opened:
            await self.scheduler.shutdown()
