"""Delivers queued webhook events from a background asyncio task inside the simulator's app.

One POST per event with the hook's destination_headers, a timeout (5 s by default), at least
once; a failure pauses that destination and a later pass retries it (see hub.WebhookHub.record).
Record changes made from other threads wake the task with loop.call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

import httpx

from procore_sim.webhooks.model import Attempt, Endpoint, Pending

if TYPE_CHECKING:
    from procore_sim.state import Simulator

USER_AGENT = "Procore-Webhooks (procore_sim)"
MAX_BODY_KEPT = 2000


class Dispatcher:
    """The delivery loop of one Simulator; start() inside the serving event loop."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._pass_lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    @property
    def running(self) -> bool:
        """Whether the delivery task is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Starts the delivery task in the running loop (idempotent)."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._pass_lock = asyncio.Lock()
        self._client = httpx.AsyncClient(headers={"User-Agent": USER_AGENT})
        self.sim.webhook_waker = self.wake
        self._task = asyncio.create_task(self._run(), name="procore-sim-webhooks")

    async def stop(self) -> None:
        """Stops delivering and closes the HTTP client."""
        if self.sim.webhook_waker == self.wake:
            self.sim.webhook_waker = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def wake(self) -> None:
        """Asks for a delivery pass soon; safe to call from any thread."""
        loop, event = self._loop, self._wake
        if loop is None or event is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
            loop.call_soon_threadsafe(event.set)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            await self.run_pass()
            delay = self.sim.webhooks.next_due_in(self.sim.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def run_pass(self) -> dict[str, int]:
        """Discards expired queues, then drains every due endpoint; returns what it did."""
        assert self._pass_lock is not None
        async with self._pass_lock:
            hub = self.sim.webhooks
            cfg = self.sim.config
            discarded = hub.discard_expired(self.sim.clock(), cfg.webhook_discard_after_seconds)
            endpoints = hub.due(self.sim.clock())
            counts = await asyncio.gather(*(self._drain(e) for e in endpoints))
            return {
                "attempted": sum(c[0] for c in counts),
                "delivered": sum(c[1] for c in counts),
                "discarded": discarded,
            }

    async def _drain(self, endpoint: Endpoint) -> tuple[int, int]:
        hub = self.sim.webhooks
        cfg = self.sim.config
        attempted = delivered = 0
        while not hub.held:
            head = hub.head(endpoint)
            if head is None:
                break
            pending, hook = head
            attempt = await self._post(hook.destination_url, hook.destination_headers, pending)
            attempted += 1
            hub.record(
                endpoint,
                pending,
                attempt,
                base=cfg.webhook_retry_base_seconds,
                cap=cfg.webhook_retry_cap_seconds,
                discard_after=cfg.webhook_discard_after_seconds,
            )
            if not attempt.ok:
                break
            delivered += 1
        return attempted, delivered

    async def _post(self, url: str, headers: dict[str, str], pending: Pending) -> Attempt:
        assert self._client is not None
        body: Any = json.dumps(pending.event, separators=(",", ":")).encode()
        sent = {"Content-Type": "application/json", **headers}
        timeout = httpx.Timeout(self.sim.config.webhook_timeout_seconds)
        started = self.sim.clock()
        try:
            response = await self._client.post(url, content=body, headers=sent, timeout=timeout)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_BODY_KEPT]
            return Attempt(False, None, {}, None, error, started, self.sim.clock())
        return Attempt(
            200 <= response.status_code < 300,
            response.status_code,
            dict(response.headers),
            response.text[:MAX_BODY_KEPT],
            None,
            started,
            self.sim.clock(),
        )
