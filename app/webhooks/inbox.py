"""The receiving end of deliveries: who may deliver for a company, and storing durably.

Authentication data (the accepted `Authorization` values, whether the installation is active,
its selected streams) is cached per company for a few seconds, so a burst of deliveries costs
no decryption and no query each; a rotated secret is accepted beside the new one for its grace
period, which covers the cache. Events are stored by one writer task per process that takes
every delivery waiting at that moment into one transaction (group commit): each delivery is
answered only after its transaction committed, and a burst costs a few commits, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from app.core.database import unit_of_work, utcnow
from app.core.logging import get_logger
from app.installations import service as installations
from app.installations.models import InstallationStatus
from app.procore.catalog import parse_stream_selection
from app.runtime import Runtime
from app.webhooks import repository
from app.webhooks import secrets as webhook_secrets

log = get_logger(__name__)

CACHE_SECONDS = 5.0
BATCH = 1000


@dataclass(frozen=True)
class Endpoint:
    """What a company's endpoint accepts."""

    company_id: int
    headers: tuple[bytes, ...]
    active: bool
    streams: frozenset[str]
    expires: float


class Inbox:
    """One process's receiver state: the endpoint cache and the group-commit writer."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._cache: dict[int, Endpoint] = {}
        self._loading: dict[int, asyncio.Future[Endpoint]] = {}
        self._queue: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def endpoint(self, company_id: int) -> Endpoint:
        """The endpoint of a company (an unknown company accepts nothing)."""
        cached = self._cache.get(company_id)
        if cached is not None and cached.expires > time.monotonic():
            return cached
        loading = self._loading.get(company_id)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[Endpoint] = asyncio.get_running_loop().create_future()
        self._loading[company_id] = future
        try:
            endpoint = await self._load(company_id)
            future.set_result(endpoint)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here; waiters re-raise it
            raise
        finally:
            self._loading.pop(company_id, None)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[company_id] = endpoint
        return endpoint

    async def _load(self, company_id: int) -> Endpoint:
        async with self.rt.sessions() as session:
            inst = await installations.get(session, company_id)
            values: list[str] = []
            if inst is not None:
                values = await webhook_secrets.accepted_headers(
                    session, self.rt, company_id, utcnow()
                )
        return Endpoint(
            company_id=company_id,
            headers=tuple(value.encode() for value in values),
            active=inst is not None and inst.status != InstallationStatus.uninstalled,
            streams=frozenset(parse_stream_selection(inst.streams) if inst is not None else []),
            expires=time.monotonic() + CACHE_SECONDS,
        )

    def forget(self, company_id: int) -> None:
        """Drops a company's cached endpoint (its secret or status changed here)."""
        self._cache.pop(company_id, None)

    @staticmethod
    def authenticate(endpoint: Endpoint, header: str | None) -> bool:
        """Whether the delivery carries an accepted Authorization value (constant time)."""
        given = (header or "").encode("latin-1", errors="replace")
        matched = False
        for accepted in endpoint.headers:
            matched |= hmac.compare_digest(given, accepted)
        return matched and bool(endpoint.headers)

    async def store(self, row: dict[str, Any]) -> bool:
        """Stores one event durably; True if new, False if its key was stored before."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((row, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="webhook-inbox-writer")
        return await asyncio.shield(future)

    async def _write(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
            rows: list[dict[str, Any]] = []
            first: dict[str, int] = {}
            for index, (row, _) in enumerate(batch):
                if row["dedupe_key"] not in first:
                    first[row["dedupe_key"]] = index
                    rows.append(row)
            try:
                async with unit_of_work(self.rt.sessions) as session:
                    new = await repository.insert_events(session, rows)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # the request handler re-raises it
                continue
            for index, (row, future) in enumerate(batch):
                key = row["dedupe_key"]
                if not future.done():
                    future.set_result(key in new and first[key] == index)

    async def close(self) -> None:
        """Lets the writer finish what it holds (bounded), then stops it."""
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._writer), timeout=10)
            self._writer.cancel()
