"""The FastAPI application factory and its lifespan (engine, HTTP client, scheduler)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.admin.auth import BearerGate
from app.admin.router import router as admin_router
from app.config import Settings, load_settings
from app.console.router import install_console
from app.core.database import create_engine, make_sessionmaker, unit_of_work
from app.core.errors import ConfigurationError, ConnectorError, NotFound
from app.core.http import BodySizeLimit, error_response, install_error_handlers, install_openapi
from app.core.logging import configure_logging, get_logger
from app.core.migrations import current_revision, head_revision, upgrade_to_head
from app.credentials.service import check_keys
from app.credentials.setup import build_keyring
from app.health.router import router as health_router
from app.installations.router import router as callback_router
from app.runtime import Runtime, build_runtime
from app.scheduling.scheduler import Scheduler
from app.scheduling.startup import Startup
from app.scheduling.worker import Worker
from app.webhooks.inbox import Inbox
from app.webhooks.router import router as webhook_router

log = get_logger(__name__)


class Role(StrEnum):
    """Which parts of the service this process runs."""

    all = "all"
    api = "api"
    worker = "worker"


async def start(settings: Settings, role: Role, *, migrate: bool) -> tuple[Runtime, Startup]:
    """Builds the runtime, migrates, checks keys, and starts the scheduler for worker roles.

    Without `migrate`, a schema behind head is waited for (serving a 503 /readyz), not a crash.
    """
    if migrate:
        await asyncio.to_thread(upgrade_to_head, settings.database_url)
    rt = build_runtime(settings)
    scheduler = None
    if role in (Role.all, Role.worker):
        rt.scheduler_expected = True
        scheduler = Scheduler(rt, Worker(rt))
    startup = Startup(rt, scheduler)
    await startup.open(wait_for_migrations=not migrate)
    return rt, startup


async def preflight(settings: Settings, *, migrate: bool) -> None:
    """Checks what would stop start-up (keys, migrations, stored key ids) before serving.

    Raises ConnectorError with one line to print; the CLI runs it before uvicorn starts.
    """
    keyring = build_keyring(settings)
    engine = create_engine(settings.database_url)
    try:
        if migrate:
            await asyncio.to_thread(upgrade_to_head, settings.database_url)
        elif await current_revision(engine) != head_revision():
            return  # not migrated yet: the service waits for it (app.scheduling.startup)
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


# Served only on the admin port when there is one (SPEC section 2): the admin API, the
# console, /metrics and the API's documentation. Everything else is public.
PRIVATE_PREFIXES = ("/admin/", "/console", "/metrics", "/docs", "/redoc", "/openapi.json")
PROBES = ("/livez", "/readyz")


def is_private(path: str) -> bool:
    """Whether a path belongs on the admin listener."""
    return path.startswith(PRIVATE_PREFIXES)


class ListenerSplit:
    """With `serve --admin-port Q`: private paths answer only on Q, public ones only elsewhere.

    One app and one lifespan serve both sockets; the socket a request came in on (the port in
    `scope["server"]`) decides. The probes answer on both.
    """

    def __init__(self, app: ASGIApp, admin_port: int) -> None:
        self.app = app
        self.admin_port = admin_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            server = scope.get("server") or ("", None)
            on_admin = server[1] == self.admin_port
            path = scope["path"]
            allowed = path in PROBES or is_private(path) == on_admin
            if not allowed:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await error_response(NotFound("not found on this port"))(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    role: Role = Role.all,
    migrate: bool = True,
    admin_port: int | None = None,
) -> FastAPI:
    """The ASGI app; nothing connects until the lifespan starts.

    With `admin_port`, private paths answer only on that port and public ones only on others.
    """
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt, startup = await start(settings, role, migrate=migrate)
        app.state.runtime = rt
        app.state.webhook_inbox = Inbox(rt)
        log.info("service started", role=str(role), worker_id=rt.worker_id)
        try:
            yield
        finally:
            await app.state.webhook_inbox.close()
            await startup.close()
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
        install_console(app)
    # Outermost last: the port split, then authentication, then the body size limit.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(BearerGate, settings=settings)
    if admin_port is not None:
        app.add_middleware(ListenerSplit, admin_port=admin_port)
    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv4 or IPv6, as the host resolves)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory app.main:app_from_env`."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
