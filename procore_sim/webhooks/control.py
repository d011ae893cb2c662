"""Control API for webhooks: see the queues, force a retry pass, hold, inject duplicates."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from procore_sim.api import json_response
from procore_sim.control import body_of, optional_int
from procore_sim.guard import sim_of
from procore_sim.listing import ApiError
from procore_sim.webhooks.dispatcher import Dispatcher
from procore_sim.webhooks.model import WebhookError


def dispatcher_of(request: Request) -> Dispatcher:
    """The app's webhook dispatcher."""
    dispatcher: Dispatcher = request.app.state.dispatcher
    return dispatcher


async def overview(request: Request) -> Response:
    """GET /_sim/webhooks: hooks, triggers, pending queues and every delivery."""
    sim = sim_of(request)
    hub = sim.webhooks
    with hub.lock:
        body: dict[str, Any] = {
            "hooks": [h.to_json() for h in hub.hooks.values()],
            "triggers": [t.to_json() for t in hub.triggers.values()],
            "pending": hub.pending(sim.clock()),
            "deliveries": [dict(d) for d in hub.deliveries],
            "held": hub.held,
        }
    return json_response(body)


async def pending(request: Request) -> Response:
    """GET /_sim/webhooks/pending: undelivered events per destination, with their pause."""
    sim = sim_of(request)
    return json_response({"endpoints": sim.webhooks.pending(sim.clock())})


async def retry(request: Request) -> Response:
    """POST /_sim/webhooks/retry: ends every pause and runs a delivery pass now."""
    sim = sim_of(request)
    dispatcher = dispatcher_of(request)
    await dispatcher.start()
    sim.webhooks.release_pauses()
    result = await dispatcher.run_pass()
    return json_response({**result, "endpoints": sim.webhooks.pending(sim.clock())})


async def hold(request: Request) -> Response:
    """PUT /_sim/webhooks/hold with {"held": bool}: holds deliveries while events queue."""
    sim = sim_of(request)
    body = await body_of(request)
    held = body.get("held", True)
    if not isinstance(held, bool):
        raise ApiError(400, {"error": "held must be true or false"})
    sim.webhooks.hold(held)
    return json_response({"held": held})


async def inject(request: Request) -> Response:
    """POST /_sim/webhooks/inject with {"mode": "duplicate"|"out_of_order", "hook_id"?}."""
    sim = sim_of(request)
    body = await body_of(request)
    try:
        touched = sim.webhooks.inject(
            str(body.get("mode", "")), optional_int(body.get("hook_id"), "hook_id"), sim.clock()
        )
    except WebhookError as exc:
        raise ApiError(exc.status, exc.body) from None
    return json_response({"mode": body.get("mode"), "events": touched})


async def permission(request: Request) -> Response:
    """PUT /_sim/companies/{id}/webhooks_permission with {"granted": bool}."""
    sim = sim_of(request)
    body = await body_of(request)
    granted = body.get("granted", True)
    if not isinstance(granted, bool):
        raise ApiError(400, {"error": "granted must be true or false"})
    company_id = int(request.path_params["company_id"])
    sim.set_webhooks_permission(company_id, granted)
    return json_response({"company_id": company_id, "webhooks_permission": granted})


def webhook_control_routes() -> list[BaseRoute]:
    """Starlette routes of the webhooks control API."""
    return [
        Route("/_sim/webhooks", overview, methods=["GET"]),
        Route("/_sim/webhooks/pending", pending, methods=["GET"]),
        Route("/_sim/webhooks/retry", retry, methods=["POST"]),
        Route("/_sim/webhooks/hold", hold, methods=["PUT"]),
        Route("/_sim/webhooks/inject", inject, methods=["POST"]),
        Route("/_sim/companies/{company_id:int}/webhooks_permission", permission, methods=["PUT"]),
    ]
