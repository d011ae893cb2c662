"""The Webhooks REST endpoints: /rest/v1.0/webhooks/hooks, triggers, deliveries, resources.

Paths, bodies and models as published (procore-api.md section 8; SDK models WebhooksHook,
WebhooksTrigger, WebhooksDelivery, WebhooksResource). Every call names its scope with
company_id or project_id (query or body) and needs the app's "Webhooks API" permission in that
company (403 otherwise).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from procore_sim.guard import Caller, check_company, check_project, guard, sim_of
from procore_sim.listing import ApiError
from procore_sim.state import Simulator
from procore_sim.webhooks.hub import Scope
from procore_sim.webhooks.model import WebhookError
from procore_sim.webhooks.resources import resource_list

NO_PERMISSION = "You do not have permission to use the Webhooks API in this company"
MAX_BULK_TRIGGERS = 100
MAX_PAGE_SIZE = 1000
JSON = "application/json; charset=utf-8"

Handler = Callable[[Request], Awaitable[Response]]


def _json(body: object, status: int = 200) -> Response:
    raw = json.dumps(body, separators=(",", ":")).encode()
    return Response(raw, status_code=status, media_type=JSON)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ApiError(400, {"errors": "The request body is not valid JSON"}) from None
    if not isinstance(parsed, dict):
        raise ApiError(400, {"errors": "The request body must be a JSON object"})
    return parsed


def _int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ApiError(400, {"errors": {name: ["must be an integer"]}})
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, {"errors": {name: ["must be an integer"]}}) from None


def _scope(sim: Simulator, caller: Caller, request: Request, body: dict[str, Any]) -> Scope:
    """(company_id, project_id) named by the query or body, after access and permission checks."""
    params = request.query_params
    project_id = _int(body.get("project_id", params.get("project_id")), "project_id")
    company_id = _int(body.get("company_id", params.get("company_id")), "company_id")
    if project_id is not None:
        company_id = check_project(sim, caller, project_id)
    elif company_id is not None:
        check_company(sim, company_id)
    else:
        raise ApiError(400, {"errors": "You must supply either a company_id or project_id"})
    if not sim.webhooks_permitted(company_id):
        raise ApiError(403, {"errors": NO_PERMISSION})
    return company_id, project_id


def _endpoint(handler: Callable[[Request, Simulator, Scope, dict[str, Any]], Response]) -> Handler:
    async def endpoint(request: Request) -> Response:
        sim = sim_of(request)
        caller = guard(request)
        body = await _body(request) if request.method in ("POST", "PATCH", "DELETE") else {}
        scope = _scope(sim, caller, request, body)
        try:
            return handler(request, sim, scope, body)
        except WebhookError as exc:
            raise ApiError(exc.status, exc.body) from None

    return endpoint


def _hook_id(request: Request) -> int:
    return int(request.path_params["hook_id"])


def list_hooks(request: Request, sim: Simulator, scope: Scope, body: dict[str, Any]) -> Response:
    """GET /rest/v1.0/webhooks/hooks?company_id|project_id&namespace&api_version."""
    params = request.query_params
    hooks = sim.webhooks.list_hooks(scope, params.get("namespace"), params.get("api_version"))
    return _json([h.to_json() for h in hooks])


def create_hook(request: Request, sim: Simulator, scope: Scope, body: dict[str, Any]) -> Response:
    """POST /rest/v1.0/webhooks/hooks with {company_id|project_id, hook: {...}}."""
    return _json(sim.webhooks.create_hook(scope, body, sim.me_id()).to_json(), 201)


def update_hook(request: Request, sim: Simulator, scope: Scope, body: dict[str, Any]) -> Response:
    """PATCH /rest/v1.0/webhooks/hooks/{id}."""
    hook = sim.webhooks.update_hook(scope, _hook_id(request), body)
    return _json(hook.to_json())


def delete_hook(request: Request, sim: Simulator, scope: Scope, body: dict[str, Any]) -> Response:
    """DELETE /rest/v1.0/webhooks/hooks/{id}."""
    sim.webhooks.delete_hook(scope, _hook_id(request))
    return Response(status_code=204)


def list_triggers(request: Request, sim: Simulator, scope: Scope, body: dict[str, Any]) -> Response:
    """GET /rest/v1.0/webhooks/hooks/{hook_id}/triggers."""
    return _json([t.to_json() for t in sim.webhooks.list_triggers(scope, _hook_id(request))])


def create_trigger(
    request: Request, sim: Simulator, scope: Scope, body: dict[str, Any]
) -> Response:
    """POST /rest/v1.0/webhooks/hooks/{hook_id}/triggers with {api_version, trigger: {...}}."""
    trigger = sim.webhooks.create_trigger(
        scope, _hook_id(request), body.get("trigger"), sim.me_id()
    )
    return _json(trigger.to_json(), 201)


def delete_trigger(
    request: Request, sim: Simulator, scope: Scope, body: dict[str, Any]
) -> Response:
    """DELETE /rest/v1.0/webhooks/hooks/{hook_id}/triggers/{id}."""
    sim.webhooks.delete_trigger(scope, _hook_id(request), int(request.path_params["trigger_id"]))
    return Response(status_code=204)


def _bulk_list(body: dict[str, Any]) -> list[Any]:
    items = body.get("triggers")
    if not isinstance(items, list):
        raise ApiError(400, {"errors": {"triggers": ["must be a list"]}})
    if len(items) > MAX_BULK_TRIGGERS:
        raise ApiError(413, {"errors": f"At most {MAX_BULK_TRIGGERS} triggers per request"})
    return items


def bulk_create(request: Request, sim: Simulator, scope: Scope, body: dict[str, Any]) -> Response:
    """POST .../triggers/bulk: 200 when every trigger was made, 207 when some were not."""
    success: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    hook_id = _hook_id(request)
    sim.webhooks.hook(scope, hook_id)
    for spec in _bulk_list(body):
        try:
            success.append(sim.webhooks.create_trigger(scope, hook_id, spec, sim.me_id()).to_json())
        except WebhookError as exc:
            failed.append(exc.body)
    if failed:
        return _json({"success": success, "failed": failed}, 207)
    return _json({"success": success})


def bulk_delete(request: Request, sim: Simulator, scope: Scope, body: dict[str, Any]) -> Response:
    """DELETE .../triggers/bulk with {triggers: [id, ...]}: 200, or 207 naming those not found."""
    success: list[int] = []
    failed: list[dict[str, Any]] = []
    hook_id = _hook_id(request)
    sim.webhooks.hook(scope, hook_id)
    for item in _bulk_list(body):
        trigger_id = _int(item, "triggers")
        try:
            sim.webhooks.delete_trigger(scope, hook_id, trigger_id or 0)
            success.append(trigger_id or 0)
        except WebhookError:
            failed.append({"code": "not_found", "trigger": trigger_id})
    if failed:
        return _json({"success": success, "failed": failed}, 207)
    return _json({"success": success})


def list_deliveries(
    request: Request, sim: Simulator, scope: Scope, body: dict[str, Any]
) -> Response:
    """GET .../deliveries?filter[status]=any|successful|failing|discarded&page_size&page_start."""
    params = request.query_params
    status = params.get("filter[status]") or params.get("filters[status]") or "any"
    page_size = _int(params.get("page_size"), "page_size") or 100
    page_start = _int(params.get("page_start"), "page_start")
    deliveries = sim.webhooks.list_deliveries(
        scope, _hook_id(request), status, min(max(page_size, 1), MAX_PAGE_SIZE), page_start
    )
    for delivery in deliveries:
        delivery.pop("hook_id", None)
    return _json(deliveries)


def list_resources(
    request: Request, sim: Simulator, scope: Scope, body: dict[str, Any]
) -> Response:
    """GET /rest/v1.0/webhooks/resources?company_id|project_id."""
    return _json(resource_list())


def webhook_routes() -> list[BaseRoute]:
    """Starlette routes of the simulated Webhooks API."""
    base = "/rest/v1.0/webhooks"
    hook = f"{base}/hooks/{{hook_id:int}}"
    return [
        Route(f"{base}/hooks", _endpoint(list_hooks), methods=["GET"]),
        Route(f"{base}/hooks", _endpoint(create_hook), methods=["POST"]),
        Route(hook, _endpoint(update_hook), methods=["PATCH"]),
        Route(hook, _endpoint(delete_hook), methods=["DELETE"]),
        Route(f"{hook}/triggers", _endpoint(list_triggers), methods=["GET"]),
        Route(f"{hook}/triggers", _endpoint(create_trigger), methods=["POST"]),
        Route(f"{hook}/triggers/bulk", _endpoint(bulk_create), methods=["POST"]),
        Route(f"{hook}/triggers/bulk", _endpoint(bulk_delete), methods=["DELETE"]),
        Route(f"{hook}/triggers/{{trigger_id:int}}", _endpoint(delete_trigger), methods=["DELETE"]),
        Route(f"{hook}/deliveries", _endpoint(list_deliveries), methods=["GET"]),
        Route(f"{base}/resources", _endpoint(list_resources), methods=["GET"]),
    ]
