"""The /_sim/ control API: ground truth, mutations, installs, limits, faults, request log."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from procore_sim.api import json_response
from procore_sim.catalog import STREAMS
from procore_sim.guard import sim_of
from procore_sim.listing import ApiError

NO_CONTENT = 204


async def body_of(request: Request) -> dict[str, Any]:
    """The JSON object body of a control request ({} when empty); 400 otherwise."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise ApiError(400, {"error": "body is not valid JSON"}) from None
    if not isinstance(parsed, dict):
        raise ApiError(400, {"error": "body must be a JSON object"})
    return parsed


def _stream(request: Request) -> str:
    stream = str(request.path_params["stream"])
    if stream not in STREAMS and stream != "companies":
        raise ApiError(404, {"error": f"unknown stream {stream!r}", "streams": list(STREAMS)})
    return stream


def optional_int(value: Any, name: str) -> int | None:
    """An optional integer parameter; 400 when it is not one."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, {"error": f"{name} must be an integer"}) from None


async def clients(request: Request) -> Response:
    """GET /_sim/clients."""
    return json_response({"clients": sim_of(request).clients()})


async def companies(request: Request) -> Response:
    """GET /_sim/companies: every company, installed or not, with its project ids."""
    sim = sim_of(request)
    out = [{**c, "project_ids": sim.project_ids(c["id"])} for c in sim.companies()]
    return json_response({"companies": out})


async def streams(request: Request) -> Response:
    """GET /_sim/streams: the stream names served."""
    return json_response({"streams": list(STREAMS)})


async def company_action(request: Request) -> Response:
    """POST /_sim/companies/{id}/install|uninstall|disconnect|reconnect."""
    sim = sim_of(request)
    company_id = int(request.path_params["company_id"])
    action = {
        "install": sim.install_company,
        "uninstall": sim.uninstall_company,
        "disconnect": sim.disconnect_company,
        "reconnect": sim.reconnect_company,
    }.get(request.path_params["action"])
    if action is None:
        raise ApiError(404, {"error": "action must be install, uninstall, disconnect or reconnect"})
    action(company_id)
    return json_response({"company_id": company_id, "status": sim.company_status(company_id)})


async def empty_companies(request: Request) -> Response:
    """POST /_sim/companies/empty_once with {"times": n}: the next n /companies answers are []."""
    sim = sim_of(request)
    body = await body_of(request)
    times = optional_int(body.get("times"), "times")
    pending = sim.answer_empty_companies(1 if times is None else times)
    return json_response({"empty_answers_pending": pending})


def _source(body: dict[str, Any]) -> dict[str, Any] | None:
    """Webhook event metadata overrides ({source_application_id, ...}) of a mutation body."""
    source = body.get("source")
    if source is None:
        return None
    if not isinstance(source, dict):
        raise ApiError(400, {"error": "source must be an object"})
    return source


async def project_permission(request: Request) -> Response:
    """PUT /_sim/companies/{cid}/projects/{pid}/permitted with {"permitted": bool}."""
    sim = sim_of(request)
    body = await body_of(request)
    company_id = int(request.path_params["company_id"])
    project_id = int(request.path_params["project_id"])
    permitted = bool(body.get("permitted", True))
    sim.set_project_permitted(company_id, project_id, permitted)
    return json_response({"project_id": project_id, "permitted": permitted})


async def list_records(request: Request) -> Response:
    """GET /_sim/records/{stream}?company_id=&project_id=&include_deleted=&budget_view_id=."""
    sim = sim_of(request)
    stream = _stream(request)
    params = request.query_params
    company_id = optional_int(params.get("company_id"), "company_id")
    if company_id is None and stream != "companies":
        raise ApiError(400, {"error": "company_id is required"})
    include_deleted = params.get("include_deleted", "").lower() in ("1", "true", "yes")
    records = sim.records(
        stream,
        company_id or 0,
        optional_int(params.get("project_id"), "project_id"),
        include_deleted=include_deleted,
        budget_view_id=optional_int(params.get("budget_view_id"), "budget_view_id"),
    )
    return json_response({"records": records, "count": len(records)})


async def create_record(request: Request) -> Response:
    """POST /_sim/records/{stream} with {company_id, project_id, fields}."""
    sim = sim_of(request)
    stream = _stream(request)
    body = await body_of(request)
    company_id = optional_int(body.get("company_id"), "company_id")
    if company_id is None:
        raise ApiError(400, {"error": "company_id is required"})
    record = sim.create_record(
        stream,
        company_id,
        optional_int(body.get("project_id"), "project_id"),
        body.get("fields") or {},
        source=_source(body),
    )
    return json_response(record, status=201)


async def change_record(request: Request) -> Response:
    """PATCH /_sim/records/{stream}/{id} with {fields} (or the fields themselves)."""
    sim = sim_of(request)
    stream = _stream(request)
    body = await body_of(request)
    fields = body["fields"] if isinstance(body.get("fields"), dict) else body
    record_id = int(request.path_params["record_id"])
    source = _source(body) if "fields" in body else None
    return json_response(sim.update_record(stream, record_id, fields, source=source))


async def delete_record(request: Request) -> Response:
    """DELETE /_sim/records/{stream}/{id}."""
    sim = sim_of(request)
    body = await body_of(request)
    sim.delete_record(_stream(request), int(request.path_params["record_id"]), source=_source(body))
    return Response(status_code=NO_CONTENT)


async def limits(request: Request) -> Response:
    """PUT /_sim/limits with {hourly, spike, spike_window_seconds}."""
    sim = sim_of(request)
    body = await body_of(request)
    sim.set_limits(
        optional_int(body.get("hourly"), "hourly"),
        optional_int(body.get("spike"), "spike"),
        float(body.get("spike_window_seconds", 10)),
    )
    return json_response(
        {
            "hourly": sim.limiter.hourly_limit,
            "spike": sim.limiter.spike_limit,
            "spike_window_seconds": sim.limiter.spike_seconds,
        }
    )


async def faults(request: Request) -> Response:
    """PUT /_sim/faults: replaces the faults (an empty body clears them)."""
    sim = sim_of(request)
    body = await body_of(request)
    try:
        sim.set_faults(**body)
    except TypeError as exc:
        raise ApiError(400, {"error": str(exc)}) from None
    return json_response(vars(sim.faults))


async def token_lifetime(request: Request) -> Response:
    """PUT /_sim/token_lifetime with {"seconds": n}."""
    sim = sim_of(request)
    body = await body_of(request)
    seconds = optional_int(body.get("seconds"), "seconds")
    if seconds is None:
        raise ApiError(400, {"error": "seconds is required"})
    sim.set_token_lifetime(seconds)
    return json_response({"seconds": seconds})


async def expire_tokens(request: Request) -> Response:
    """POST /_sim/expire_tokens."""
    sim_of(request).expire_tokens()
    return Response(status_code=NO_CONTENT)


async def requests_log(request: Request) -> Response:
    """GET /_sim/requests?path=&company_id=&status=."""
    sim = sim_of(request)
    params = request.query_params
    entries = sim.request_log(
        params.get("path") or None,
        optional_int(params.get("company_id"), "company_id"),
        optional_int(params.get("status"), "status"),
    )
    return json_response({"requests": entries, "count": len(entries)})


async def clear_requests(request: Request) -> Response:
    """DELETE /_sim/requests."""
    sim_of(request).clear_request_log()
    return Response(status_code=NO_CONTENT)


async def reset(request: Request) -> Response:
    """POST /_sim/reset: regenerates everything from the seed."""
    sim_of(request).reset()
    return Response(status_code=NO_CONTENT)


def control_routes() -> list[BaseRoute]:
    """Starlette routes of the control API."""
    return [
        Route("/_sim/clients", clients, methods=["GET"]),
        Route("/_sim/companies", companies, methods=["GET"]),
        Route("/_sim/streams", streams, methods=["GET"]),
        Route("/_sim/companies/empty_once", empty_companies, methods=["POST"]),
        Route("/_sim/companies/{company_id:int}/{action}", company_action, methods=["POST"]),
        Route(
            "/_sim/companies/{company_id:int}/projects/{project_id:int}/permitted",
            project_permission,
            methods=["PUT"],
        ),
        Route("/_sim/records/{stream}", list_records, methods=["GET"]),
        Route("/_sim/records/{stream}", create_record, methods=["POST"]),
        Route("/_sim/records/{stream}/{record_id:int}", change_record, methods=["PATCH"]),
        Route("/_sim/records/{stream}/{record_id:int}", delete_record, methods=["DELETE"]),
        Route("/_sim/limits", limits, methods=["PUT"]),
        Route("/_sim/faults", faults, methods=["PUT"]),
        Route("/_sim/token_lifetime", token_lifetime, methods=["PUT"]),
        Route("/_sim/expire_tokens", expire_tokens, methods=["POST"]),
        Route("/_sim/requests", requests_log, methods=["GET"]),
        Route("/_sim/requests", clear_requests, methods=["DELETE"]),
        Route("/_sim/reset", reset, methods=["POST"]),
    ]
