"""The long-lived parts of a running service, built once and shared by the API and the workers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.database import create_engine, make_sessionmaker
from app.core.logging import get_logger
from app.core.settings import Settings
from app.credentials.crypto import Keyring
from app.credentials.setup import build_keyring
from app.procore import HealthCounters, ProcoreClient, make_http_client
from app.procore.metrics import MeteredHealthCounters, token_request_hook
from app.runs.owners import WorkerIdentity

log = get_logger(__name__)


@dataclass
class Runtime:
    """Engine, sessions, keyring and the shared Procore client of one process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    keyring: Keyring
    http: httpx.AsyncClient
    procore: ProcoreClient
    health: HealthCounters
    identity: WorkerIdentity = field(default_factory=WorkerIdentity.create)
    wake_event: asyncio.Event = field(default_factory=asyncio.Event)
    last_tick_at: float | None = None
    scheduler_expected: bool = False
    local_runs: dict[str, tuple[int, Callable[[], None]]] = field(default_factory=dict)

    @property
    def worker_id(self) -> str:
        """This process's lease owner, `host/scope/pid/nonce` (app/runs/owners.py)."""
        return str(self.identity)

    def register_local_run(self, run_id: str, company_id: int, cancel: Callable[[], None]) -> None:
        """Lets a cancel in this process reach a run it executes at once (not at a heartbeat)."""
        self.local_runs[run_id] = (company_id, cancel)

    def forget_local_run(self, run_id: str) -> None:
        """The run ended here."""
        self.local_runs.pop(run_id, None)

    def cancel_local_runs(
        self, *, run_id: str | None = None, company_id: int | None = None
    ) -> None:
        """Asks runs executing in this process to stop at their next page (other processes
        learn of the cancel at their next heartbeat)."""
        for key, (company, cancel) in list(self.local_runs.items()):
            if key == run_id or (company_id is not None and company == company_id):
                cancel()

    def wake_scheduler(self) -> None:
        """Tells the worker loop that there may be work now (a run was queued or finished)."""
        self.wake_event.set()

    async def aclose(self) -> None:
        """Closes the HTTP client and the database pool."""
        await self.http.aclose()
        await self.engine.dispose()


def build_runtime(settings: Settings) -> Runtime:
    """Creates the runtime; nothing connects until first use."""
    keyring = build_keyring(settings)
    engine = create_engine(settings.database_url)
    http = make_http_client()
    http.event_hooks["response"].append(token_request_hook(settings.login_url))
    health: HealthCounters = MeteredHealthCounters()
    procore = ProcoreClient(
        http,
        api_url=settings.api_url,
        login_url=settings.login_url,
        per_page=settings.per_page,
        health=health,
        max_retry_seconds=settings.procore_max_wait_seconds,
    )
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        keyring=keyring,
        http=http,
        procore=procore,
        health=health,
    )
