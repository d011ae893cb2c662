"""The FastAPI application factory and its lifespan (engine, HTTP client, scheduler)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum

from fastapi import FastAPI

from app.admin.router import router as admin_router
from app.config import Settings, load_settings
from app.core.database import create_engine, make_sessionmaker, unit_of_work
from app.core.errors import ConfigurationError, ConnectorError
from app.core.http import BodySizeLimit, install_error_handlers, install_openapi
from app.core.logging import configure_logging, get_logger
from app.core.migrations import upgrade_to_head
from app.credentials.service import check_keys
from app.credentials.setup import build_keyring
from app.health.router import router as health_router
from app.installations.router import router as callback_router
from app.runtime import Runtime, build_runtime
from app.scheduling.scheduler import Scheduler
from app.scheduling.worker import Worker
from app.webhooks.inbox import Inbox
from app.webhooks.router import router as webhook_router

log = get_logger(__name__)


class Role(StrEnum):
    """Which parts of the service this process runs."""

    all = "all"
    api = "api"
    worker = "worker"


async def start(
    settings: Settings, role: Role, *, migrate: bool
) -> tuple[Runtime, Scheduler | None]:
    """Builds the runtime, migrates, checks keys, and starts the scheduler for worker roles."""
    if migrate:
        await asyncio.to_thread(upgrade_to_head, settings.database_url)
    rt = build_runtime(settings)
    async with unit_of_work(rt.sessions) as session:
        await check_keys(session, rt.keyring)
    scheduler = None
    if role in (Role.all, Role.worker):
        rt.scheduler_expected = True
        scheduler = Scheduler(rt, Worker(rt))
        await scheduler.start()
    return rt, scheduler


async def preflight(settings: Settings, *, migrate: bool) -> None:
    """Checks what would stop start-up (keys, migrations, stored key ids) before serving.

    Raises ConnectorError with one line to print; the CLI runs it before uvicorn starts.
    """
    keyring = build_keyring(settings)
    engine = create_engine(settings.database_url)
    try:
        if migrate:
            await asyncio.to_thread(upgrade_to_head, settings.database_url)
        async with unit_of_work(make_sessionmaker(engine)) as session:
            await check_keys(session, keyring)
    except ConnectorError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"CONNECTOR_DATABASE_URL: cannot use the database ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]})"
        ) from None
    finally:
        await engine.dispose()


def create_app(
    settings: Settings | None = None, *, role: Role = Role.all, migrate: bool = True
) -> FastAPI:
    """The ASGI app; nothing connects until the lifespan starts."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt, scheduler = await start(settings, role, migrate=migrate)
        app.state.runtime = rt
        app.state.webhook_inbox = Inbox(rt)
        log.info("service started", role=str(role), worker_id=rt.worker_id)
        try:
            yield
        finally:
            await app.state.webhook_inbox.close()
            if scheduler is not None:
                await scheduler.shutdown()
            await rt.aclose()
            log.info("service stopped")

    serves_api = role in (Role.all, Role.api)
    # The worker role answers only /livez, /readyz and /metrics: no API, no OpenAPI pages.
    app = FastAPI(
        title="Procore DMSA Connector",
        version="0.1.0",
        description="Admin API, install callbacks and health of the Procore DMSA connector.",
        lifespan=lifespan,
        openapi_url="/openapi.json" if serves_api else None,
        docs_url="/docs" if serves_api else None,
        redoc_url="/redoc" if serves_api else None,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(health_router)
    if serves_api:
        app.include_router(callback_router)
        app.include_router(admin_router)
        app.include_router(webhook_router)  # public: Procore delivers here (SPEC section 8)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory app.main:app_from_env`."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
