"""The ASGI app factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from procore_sim.api import api_routes, json_response
from procore_sim.config import SimulatorConfig
from procore_sim.control import control_routes
from procore_sim.listing import ApiError
from procore_sim.middleware import SimulatorMiddleware
from procore_sim.oauth import oauth_routes
from procore_sim.state import Simulator
from procore_sim.store import UnknownRecordError
from procore_sim.webhooks.control import webhook_control_routes
from procore_sim.webhooks.dispatcher import Dispatcher
from procore_sim.webhooks.routes import webhook_routes


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json_response(exc.body, status=exc.status, headers=exc.headers)


async def _unknown(request: Request, exc: Exception) -> Response:
    return json_response({"error": str(exc)}, status=404)


async def _not_found(request: Request, exc: Exception) -> Response:
    return json_response({"errors": "Not Found"}, status=404)


class SimulatorApp(Starlette):
    """Starlette app whose outermost layer is the fault/log middleware (it needs the raw send)."""

    def __init__(self, sim: Simulator) -> None:
        dispatcher = Dispatcher(sim)

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            await dispatcher.start()
            try:
                yield
            finally:
                await dispatcher.stop()

        super().__init__(
            routes=[
                *oauth_routes(),
                *webhook_routes(),
                *api_routes(),
                *control_routes(),
                *webhook_control_routes(),
            ],
            exception_handlers={
                ApiError: _api_error,
                UnknownRecordError: _unknown,
                404: _not_found,
            },
            lifespan=lifespan,
        )
        self.state.sim = sim
        self.state.dispatcher = dispatcher
        # Without a lifespan (an ASGI transport), the first request starts the deliveries.
        self._outer = SimulatorMiddleware(super().__call__, sim, dispatcher.start)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._outer(scope, receive, send)


def create_app(config: SimulatorConfig | None = None, sim: Simulator | None = None) -> Starlette:
    """Builds the simulator's ASGI app; app.state.sim is its Simulator."""
    return SimulatorApp(sim or Simulator(config or SimulatorConfig()))
