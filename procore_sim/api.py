"""The Procore REST endpoints: companies, /me, and a list endpoint per catalog stream."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from procore_sim.budget import view_rows
from procore_sim.catalog import STREAMS, StreamSpec
from procore_sim.generate.common import iso
from procore_sim.guard import Caller, check_company, check_project, guard, sim_of
from procore_sim.listing import (
    ApiError,
    in_range,
    link_header,
    page_body,
    page_params,
    parse_day,
    parse_range,
    sort_keys,
    sort_records,
)
from procore_sim.state import Simulator
from procore_sim.store import Stored, View, parse_ts
from procore_sim.views import (
    COMMITMENTS,
    compact,
    compact_bytes,
    manpower_status,
    people_status,
    project_status,
    too_large,
)

Target = Literal["company_query", "company_path", "project_path", "project_query"]
JSON = "application/json; charset=utf-8"


@dataclass(frozen=True)
class ListRoute:
    """One list endpoint: its path, stream, where the scope comes from and what it filters."""

    path: str
    stream: str
    target: Target
    recycle_bin: bool = False
    filters: bool = True
    parent_param: str | None = None
    daily: bool = False
    # Procore's /users/inactive and /vendors/inactive lists.
    inactive: bool = False


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A compact JSON response."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    return Response(raw, status_code=status, headers=dict(headers or {}), media_type=JSON)


def paged(
    request: Request,
    sim: Simulator,
    items: list[Stored] | list[bytes],
    *,
    max_per_page: int | None = None,
) -> Response:
    """One page of items with Total, Per-Page and Link headers."""
    cfg = sim.config
    cap = cfg.max_per_page if max_per_page is None else max_per_page
    page, per_page = page_params(request.query_params, cfg.default_per_page, cap)
    chunk = items[(page - 1) * per_page : page * per_page]
    if chunk and isinstance(chunk[0], bytes):
        body = b"[" + b",".join(c for c in chunk if isinstance(c, bytes)) + b"]"
    else:
        body = page_body([c for c in chunk if isinstance(c, Stored)])
    base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
    headers = {
        "Total": str(len(items)),
        "Per-Page": str(per_page),
        "Link": link_header(base, request.query_params.multi_items(), page, per_page, len(items)),
    }
    return Response(body, headers=headers, media_type=JSON)


def _int_param(params: Mapping[str, str], name: str) -> int:
    value = params.get(name)
    if value is None or not value.strip():
        raise ApiError(400, {"errors": {name: ["is missing"]}})
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, {"errors": {name: ["must be an integer"]}}) from None


def _scope(request: Request, route: ListRoute, sim: Simulator, caller: Caller) -> tuple[int, int]:
    """(company_id, project_id or 0) the request reads, after access checks."""
    params = request.query_params
    if route.target == "company_query":
        company_id = _int_param(params, "company_id")
    elif route.target == "company_path":
        company_id = int(request.path_params["company_id"])
    else:
        if route.target == "project_path":
            project_id = int(request.path_params["project_id"])
        else:
            project_id = _int_param(params, "project_id")
        return check_project(sim, caller, project_id), project_id
    check_company(sim, company_id)
    return company_id, 0


def _view(spec: StreamSpec, route: ListRoute, params: Mapping[str, str]) -> View:
    if route.recycle_bin:
        return "deleted"
    if spec.delete_mode == "include_deleted":
        choice = params.get("filters[include_deleted]", "").strip().lower()
        views: dict[str, View] = {"only": "deleted", "with": "all", "true": "all"}
        return views.get(choice, "active")
    if spec.delete_mode == "documents":
        flag = params.get("filters[is_in_recycle_bin]", "").strip().lower()
        return "deleted" if flag == "true" else "active"
    if spec.delete_mode == "deleted_at_filter" and params.get("filters[deleted_at]"):
        return "deleted"
    return "active"


def _budget_view(
    request: Request, route: ListRoute, sim: Simulator, company_id: int, project_id: int
) -> dict[str, object]:
    parent_id = int(request.path_params[route.parent_param or ""])
    parents = sim.store.partition("budget_views", company_id, project_id).view("active")
    for parent in parents:
        if parent.data["id"] == parent_id:
            return parent.data
    raise ApiError(404, {"errors": f"Budget view {parent_id} not found"})


def _select(
    request: Request,
    route: ListRoute,
    sim: Simulator,
    spec: StreamSpec,
    company_id: int,
    project_id: int,
) -> list[Stored] | list[bytes]:
    params = request.query_params
    part = sim.store.partition(spec.name, company_id, project_id)
    records = part.view(_view(spec, route, params))
    if route.parent_param is not None:
        view = _budget_view(request, route, sim, company_id, project_id)
        if sim.config.budget_rows_repeat_ids:
            return view_rows(part, view, iso(sim.store.anchor)[:7])
        records = [s for s in records if s.data.get("budget_view_id") == view["id"]]
    if spec.name == "projects":
        records = [s for s in records if sim.project_permitted(int(s.data["id"]))]
        records = project_status(records, params, sim)
    if spec.name in ("users", "vendors"):
        records = people_status(records, route.inactive, sim)
    if spec.name == "daily_manpower_logs":
        records = manpower_status(records, params, sim)
    if route.daily:
        records = _daily_window(records, params, sim)
    if route.filters and spec.updated_filter and params.get("filters[updated_at]"):
        bounds = parse_range(params["filters[updated_at]"], "updated_at")
        records = [s for s in records if in_range(s.updated_ts, bounds)]
    if route.filters and params.get("filters[created_at]"):
        bounds = parse_range(params["filters[created_at]"], "created_at")
        records = [s for s in records if in_range(parse_ts(s.data.get("created_at")), bounds)]
    if spec.delete_mode == "deleted_at_filter" and params.get("filters[deleted_at]"):
        bounds = parse_range(params["filters[deleted_at]"], "deleted_at")
        records = [s for s in records if in_range(s.deleted_ts, bounds)]
    keys = sort_keys(params, spec.sort) if route.filters else []
    if keys:
        records = sort_records(records, keys)
    if spec.name in COMMITMENTS and compact(params, sim):
        return [compact_bytes(s) for s in records]
    return records


def _daily_window(records: list[Stored], params: Mapping[str, str], sim: Simulator) -> list[Stored]:
    """Daily logs of log_date, of start_date..end_date, or of today when no date is given."""
    if params.get("log_date"):
        first = last = parse_day(params["log_date"], "log_date").isoformat()
    elif params.get("start_date") or params.get("end_date"):
        start = params.get("start_date") or params.get("end_date") or ""
        end = params.get("end_date") or start
        first = parse_day(start, "start_date").isoformat()
        last = parse_day(end, "end_date").isoformat()
        if first > last:
            raise ApiError(400, {"errors": {"start_date": ["must not be after end_date"]}})
    else:
        first = last = iso(sim.store.anchor)[:10]
    return [s for s in records if first <= str(s.data.get("date", "")) <= last]


def list_endpoint(route: ListRoute) -> Callable[[Request], Awaitable[Response]]:
    """The handler of one list route."""
    spec = STREAMS[route.stream]

    async def endpoint(request: Request) -> Response:
        sim = sim_of(request)
        caller = guard(request)
        with sim.lock:
            company_id, project_id = _scope(request, route, sim, caller)
            too_large(request, sim)
            records = _select(request, route, sim, spec, company_id, project_id)
            cap = sim.config.projects_max_per_page if spec.name == "projects" else None
            return paged(request, sim, records, max_per_page=cap)

    return endpoint


async def companies_endpoint(request: Request) -> Response:
    """GET /rest/v1.0/companies: the companies where the app is installed.

    Free companies only with include_free_companies=true (procore-api.md section 11).
    """
    sim = sim_of(request)
    guard(request, company_required=False)
    include_free = request.query_params.get("include_free_companies", "").lower() == "true"
    fields = ("id", "name", "is_active", "logo_url", "pcn_business_experience", "my_company")
    items = [
        json.dumps({k: c[k] for k in fields}, separators=(",", ":")).encode()
        for c in sim.listed_companies(include_free=include_free)
    ]
    if sim.take_empty_companies_answer():
        items = []  # a one-off empty answer, armed through the control API
    return paged(request, sim, items)


async def me_endpoint(request: Request) -> Response:
    """GET /rest/v1.0/me: the DMSA service user."""
    sim = sim_of(request)
    caller = guard(request, company_required=False)
    return json_response(
        {
            "id": sim.me_id(),
            "login": f"{caller.client_id}@dmsa.procore.invalid",
            "name": "Data Connector (DMSA)",
        }
    )


def list_routes() -> list[ListRoute]:
    """Every list endpoint served, including alternate versions and recycle bins."""
    routes = [
        ListRoute("/rest/v1.1/projects", "projects", "company_query"),
        ListRoute("/rest/v1.0/projects", "projects", "company_query"),
        ListRoute(
            "/rest/v1.0/companies/{company_id:int}/projects",
            "projects",
            "company_path",
            filters=False,
        ),
        ListRoute("/rest/v1.0/vendors", "vendors", "company_query"),
        ListRoute(
            "/rest/v1.0/companies/{company_id:int}/vendors/inactive",
            "vendors",
            "company_path",
            inactive=True,
        ),
        ListRoute(
            "/rest/v1.0/companies/{company_id:int}/users/inactive",
            "users",
            "company_path",
            inactive=True,
        ),
        ListRoute("/rest/v1.0/projects/{project_id:int}/rfis", "rfis", "project_path"),
        ListRoute(
            "/rest/v1.0/projects/{project_id:int}/rfis/recycle_bin",
            "rfis",
            "project_path",
            recycle_bin=True,
        ),
        ListRoute("/rest/v1.1/projects/{project_id:int}/submittals", "submittals", "project_path"),
        ListRoute(
            "/rest/v1.1/projects/{project_id:int}/submittals/recycle_bin",
            "submittals",
            "project_path",
            recycle_bin=True,
        ),
        ListRoute("/rest/v1.0/observations/items", "observations", "project_query"),
        ListRoute(
            "/rest/v1.0/projects/{project_id:int}/recycle_bin/observations/items",
            "observations",
            "project_path",
            recycle_bin=True,
        ),
        ListRoute("/rest/v1.1/punch_items", "punch_items", "project_query"),
        ListRoute(
            "/rest/v1.1/punch_items/recycle_bin", "punch_items", "project_query", recycle_bin=True
        ),
        ListRoute("/rest/v1.0/change_events", "change_events", "project_query"),
        ListRoute("/rest/v1.0/work_order_contracts", "work_order_contracts", "project_query"),
        ListRoute(
            "/rest/v1.0/purchase_order_contracts", "purchase_order_contracts", "project_query"
        ),
        ListRoute("/rest/v1.0/prime_contracts", "prime_contracts", "project_query"),
        ListRoute("/rest/v1.0/budget_views", "budget_views", "project_query"),
        ListRoute(
            "/rest/v1.0/budget_views/{view_id:int}/detail_rows",
            "budget_detail_rows",
            "project_query",
            parent_param="view_id",
        ),
        ListRoute("/rest/v1.0/cost_codes", "cost_codes", "project_query"),
        ListRoute("/rest/v1.0/projects/{project_id:int}/documents", "documents", "project_path"),
        ListRoute(
            "/rest/v1.0/projects/{project_id:int}/checklist/lists", "checklists", "project_path"
        ),
        ListRoute(
            "/rest/v1.0/projects/{project_id:int}/recycle_bin/checklist/lists",
            "checklists",
            "project_path",
            recycle_bin=True,
        ),
        ListRoute("/rest/v1.0/projects/{project_id:int}/timesheets", "timesheets", "project_path"),
        ListRoute(
            "/rest/v1.0/projects/{project_id:int}/manpower_logs",
            "daily_manpower_logs",
            "project_path",
            daily=True,
        ),
    ]
    for version in range(4):
        routes.append(
            ListRoute(
                f"/rest/v1.{version}/companies/{{company_id:int}}/users", "users", "company_path"
            )
        )
        routes.append(ListRoute(f"/rest/v1.{version}/users", "users", "company_query"))
    return routes


def api_routes() -> list[BaseRoute]:
    """Starlette routes of the simulated Procore REST API."""
    routes: list[BaseRoute] = [
        Route("/rest/v1.0/companies", companies_endpoint, methods=["GET"]),
        Route("/rest/v1.0/me", me_endpoint, methods=["GET"]),
    ]
    routes.extend(Route(r.path, list_endpoint(r), methods=["GET"]) for r in list_routes())
    return routes


__all__ = ["ApiError", "api_routes", "json_response"]
