"""A second, independent Procore fake for the acceptance suite.

Written from `reference/procore-api.md` only (not from `procore_sim`). It deliberately behaves
the way real Procore may and our simulator does not:

* `per_page` is silently capped at 100 whatever is asked;
* `Link` lists its rels in an unusual order (last, next, first, prev) with extra whitespace and
  absolute URLs; some endpoints send no `Total`;
* access tokens are short-lived (`expires_in` configurable) and expired ones get a 401;
* every answer carries `X-Rate-Limit-Limit/-Remaining/-Reset` from a fixed window; going over
  the budget gets a 429 with `Retry-After`; single 429s and 503s can be injected;
* ids above 2**40, timestamps with `+00:00` offsets and fractional seconds, nested extra
  fields and unicode;
* a missing `Procore-Company-Id` is a 400 and is counted; a company flipped to disconnected
  answers 403 "App is not connected to this company" and leaves `/companies`.

Everything is in memory; tests mutate `FakeProcore` directly and read its request log.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PAGE_CAP = 100
ID_BASE = 2**41  # ids above 2**40, as int64 ids in Procore can be
CLIENT_ID = "fake-dmsa-client"
CLIENT_SECRET = "fake-dmsa-secret-7f3a9c"

# stream name -> (path regex, scope, supports filters[updated_at], sends Total header)
# Paths are from the reference's "Stream names used by this product" table.
PROJECT_STREAMS: dict[str, tuple[str, bool, bool]] = {
    "rfis": (r"/rest/v1\.0/projects/(?P<pid>\d+)/rfis", True, False),
    "submittals": (r"/rest/v1\.1/projects/(?P<pid>\d+)/submittals", True, True),
    "observations": (r"/rest/v1\.0/observations/items", True, True),
    "punch_items": (r"/rest/v1\.1/punch_items", True, True),
    "change_events": (r"/rest/v1\.0/change_events", True, True),
    "work_order_contracts": (r"/rest/v1\.0/work_order_contracts", True, True),
    "purchase_order_contracts": (r"/rest/v1\.0/purchase_order_contracts", True, True),
    "prime_contracts": (r"/rest/v1\.0/prime_contracts", True, True),
    "budget_views": (r"/rest/v1\.0/budget_views", False, True),
    "cost_codes": (r"/rest/v1\.0/cost_codes", False, False),
    "documents": (r"/rest/v1\.0/projects/(?P<pid>\d+)/documents", True, True),
    "checklists": (r"/rest/v1\.0/projects/(?P<pid>\d+)/checklist/lists", True, True),
    "timesheets": (r"/rest/v1\.0/projects/(?P<pid>\d+)/timesheets", True, True),
}
INCLUDE_DELETED = {"change_events", "work_order_contracts", "purchase_order_contracts"}


def stamp(moment: datetime) -> str:
    """Procore-ish timestamp with an explicit +00:00 offset and microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    text = text.strip().strip('"').strip("'")
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Logged:
    """One request the fake answered."""

    method: str
    path: str
    query: dict[str, str]
    company_header: str | None
    status: int
    at: float


@dataclass
class Company:
    id: int
    name: str
    connected: bool = True
    listed: bool = True
    projects: list[int] = field(default_factory=list)


class FakeProcore:
    """State and behaviour of the fake; `app` is its ASGI application."""

    def __init__(self, *, expires_in: int = 5400) -> None:
        self.lock = threading.RLock()
        self.clients = {CLIENT_ID: CLIENT_SECRET}
        self.expires_in = expires_in
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.token_requests = 0
        self.companies: dict[int, Company] = {}
        self.project_company: dict[int, int] = {}
        # (stream, company_id, project_id or None) -> {id: record}
        self.records: dict[tuple[str, int, int | None], dict[int, dict[str, Any]]] = {}
        # deleted records kept for recycle bins / include_deleted
        self.deleted: dict[tuple[str, int, int | None], dict[int, dict[str, Any]]] = {}
        self.children: dict[int, dict[int, dict[str, Any]]] = {}  # budget view -> detail rows
        self.log: list[Logged] = []
        self.missing_header = 0
        self.wrong_header = 0
        self.rate_limit = 3600
        self.rate_window = 3600.0
        self.window_counts: dict[tuple[int | None, int], int] = {}
        self.fail_next: list[tuple[int, dict[str, str]]] = []  # injected answers, FIFO
        self.fail_after = 0  # inject only after this many API requests
        self.latency = 0.0
        self._next_id = ID_BASE + 7
        self.url = ""
        self.app = Starlette(
            routes=[
                Route("/oauth/token", self.token_endpoint, methods=["POST"]),
                Route("/{path:path}", self.api, methods=["GET"]),
            ]
        )

    # ----------------------------------------------------------------- data set-up
    def new_id(self) -> int:
        with self.lock:
            self._next_id += 13
            return self._next_id

    def add_company(self, name: str, projects: int = 2) -> Company:
        company = Company(self.new_id(), name)
        self.companies[company.id] = company
        for n in range(projects):
            self.add_project(company.id, f"Projet Nº{n + 1} – Zürich «東京» 🏗")  # noqa: RUF001 - unicode on purpose
        return company

    def add_project(self, company_id: int, name: str) -> dict[str, Any]:
        pid = self.new_id()
        self.companies[company_id].projects.append(pid)
        self.project_company[pid] = company_id
        now = datetime.now(UTC) - timedelta(days=3)
        record = {
            "id": pid,
            "name": name,
            "display_name": f"{pid} - {name}",
            "active": True,
            "company": {"id": company_id, "name": self.companies[company_id].name},
            "custom_fields": {"custom_field_1": {"data_type": "string", "value": "ß"}},
            "total_value": "1234567.89",
            "created_at": stamp(now),
            "updated_at": stamp(now),
        }
        self.records.setdefault(("projects", company_id, None), {})[pid] = record
        return record

    def add_records(
        self,
        stream: str,
        company_id: int,
        project_id: int | None,
        count: int,
        *,
        fresh: bool = False,
        **extra: Any,
    ) -> list[dict[str, Any]]:
        """Adds records; `fresh` ones were created just now, the others two days ago."""
        made = []
        base = datetime.now(UTC) - timedelta(days=0 if fresh else 2)
        bucket = self.records.setdefault((stream, company_id, project_id), {})
        for n in range(count):
            rid = self.new_id()
            moment = base if fresh else base + timedelta(seconds=n, microseconds=123457)
            record: dict[str, Any] = {
                "id": rid,
                "subject" if stream == "rfis" else "name": f"{stream} #{n} — café ☕ 北京",
                "status": {"id": n % 3, "name": ["open", "draft", "closed"][n % 3]},
                "assignees": [{"id": self.new_id(), "login": f"user{n}@example.com"}],
                "cost": 10.5 * n,
                "created_at": stamp(moment),
                "updated_at": stamp(moment),
            }
            if stream == "rfis":
                record |= {"deleted": False, "deleted_at": None, "number": str(n)}
            if stream == "daily_manpower_logs":
                day = (datetime.now(UTC) - timedelta(days=n % 20)).date()
                record |= {"date": day.isoformat(), "num_workers": n, "num_hours": "8.0"}
            record |= extra
            bucket[rid] = record
            made.append(record)
        return made

    def add_detail_rows(self, view_id: int, count: int) -> list[dict[str, Any]]:
        rows = {}
        for n in range(count):
            rid = self.new_id()
            rows[rid] = {"id": rid, "cost_code": f"01-{n:03d}", "original_budget_amount": n * 1.5}
        self.children.setdefault(view_id, {}).update(rows)
        return list(rows.values())

    def update_record(
        self, stream: str, company_id: int, project_id: int | None, rid: int, **changes: Any
    ) -> dict[str, Any]:
        with self.lock:
            record = self.records[(stream, company_id, project_id)][rid]
            record.update(changes)
            record["updated_at"] = stamp(datetime.now(UTC))
            return record

    def delete_record(
        self, stream: str, company_id: int, project_id: int | None, rid: int
    ) -> dict[str, Any]:
        with self.lock:
            record = self.records[(stream, company_id, project_id)].pop(rid)
            now = stamp(datetime.now(UTC))
            record = record | {"deleted_at": now, "updated_at": now}
            if stream == "rfis":
                record["deleted"] = True
            self.deleted.setdefault((stream, company_id, project_id), {})[rid] = record
            return record

    def disconnect(self, company_id: int) -> None:
        self.companies[company_id].connected = False
        self.companies[company_id].listed = False

    def expected(self, stream: str, company_id: int) -> dict[int, tuple[int | None, dict]]:
        """Every live record of a stream for a company: id -> (project_id, record)."""
        out: dict[int, tuple[int | None, dict]] = {}
        for (name, cid, pid), bucket in self.records.items():
            if name == stream and cid == company_id:
                out.update({rid: (pid, rec) for rid, rec in bucket.items()})
        return out

    # ----------------------------------------------------------------- request log
    def api_calls(self, company_id: int | None = None) -> list[Logged]:
        with self.lock:
            calls = [e for e in self.log if e.path.startswith("/rest/")]
        if company_id is not None:
            calls = [e for e in calls if e.company_header == str(company_id)]
        return calls

    def statuses(self) -> list[int]:
        with self.lock:
            return [e.status for e in self.log]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    # ----------------------------------------------------------------- HTTP
    def _record(self, request: Request, status: int) -> None:
        with self.lock:
            self.log.append(
                Logged(
                    request.method,
                    request.url.path,
                    dict(parse_qsl(request.url.query, keep_blank_values=True)),
                    request.headers.get("procore-company-id"),
                    status,
                    time.monotonic(),
                )
            )

    async def token_endpoint(self, request: Request) -> Response:
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            form = json.loads(raw or b"{}")
        else:
            form = dict(parse_qsl(raw.decode()))
        with self.lock:
            self.token_requests += 1
        if form.get("grant_type") != "client_credentials" or self.clients.get(
            str(form.get("client_id"))
        ) != form.get("client_secret"):
            self._record(request, 401)
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                status_code=401,
            )
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.monotonic() + self.expires_in
        self._record(request, 200)
        return JSONResponse(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.expires_in,
                "created_at": int(time.time()),
            }
        )

    def _rate_headers(self, company: int | None) -> tuple[dict[str, str], bool]:
        now = time.time()
        window = int(now // self.rate_window)
        with self.lock:
            key = (company, window)
            self.window_counts[key] = self.window_counts.get(key, 0) + 1
            used = self.window_counts[key]
        reset = int((window + 1) * self.rate_window)
        remaining = max(0, self.rate_limit - used)
        headers = {
            "X-Rate-Limit-Limit": str(self.rate_limit),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": str(reset),
        }
        if used > self.rate_limit:
            headers["Retry-After"] = str(max(1, math.ceil(reset - now)))
            return headers, False
        return headers, True

    async def api(self, request: Request) -> Response:
        answer = self._answer(request)  # judged on arrival, answered after the latency
        self._record(request, answer.status_code)
        if self.latency:
            await asyncio.sleep(self.latency)
        return answer

    def _answer(self, request: Request) -> Response:
        path = request.url.path
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip()
        with self.lock:
            expiry = self.tokens.get(token)
        if expiry is None or expiry <= time.monotonic():
            return JSONResponse({"error": "The access token is invalid"}, status_code=401)
        header = request.headers.get("procore-company-id")
        companyless = path in ("/rest/v1.0/companies", "/rest/v1.0/me")
        if header is None and not companyless:
            with self.lock:
                self.missing_header += 1
            return JSONResponse({"errors": "Missing Procore-Company-Id header!"}, status_code=400)
        company_key = int(header) if header and header.isdigit() else None
        rate_headers, allowed = self._rate_headers(company_key)
        if not allowed:
            return JSONResponse(
                {
                    "error": "You have surpassed the max number of requests for an hour. "
                    "Please wait until your limit resets."
                },
                status_code=429,
                headers=rate_headers,
            )
        with self.lock:
            api_count = sum(1 for e in self.log if e.path.startswith("/rest/"))
            injected = (
                self.fail_next.pop(0) if self.fail_next and api_count >= self.fail_after else None
            )
        if injected is not None:
            status, extra = injected
            return JSONResponse(
                {"error": "injected"}, status_code=status, headers=rate_headers | extra
            )

        if path == "/rest/v1.0/companies":
            rows = [
                {
                    "id": c.id,
                    "name": c.name,
                    "is_active": True,
                    "logo_url": None,
                    "my_company": False,
                }
                for c in self.companies.values()
                if c.listed
            ]
            return self._page(request, rows, rate_headers, send_total=True)

        # Which company does this call concern?
        company_id, project_id, stream, view_id = self._route(path, query)
        if stream is None:
            return JSONResponse(
                {"errors": f"Not found: {path}"}, status_code=404, headers=rate_headers
            )
        if company_id is None or company_id not in self.companies:
            return JSONResponse({"errors": "Not found"}, status_code=404, headers=rate_headers)
        if str(company_id) != header:
            with self.lock:
                self.wrong_header += 1
            return JSONResponse(
                {"errors": "Procore-Company-Id does not match the resource"},
                status_code=403,
                headers=rate_headers,
            )
        if not self.companies[company_id].connected:
            return JSONResponse(
                {"errors": "App is not connected to this company"},
                status_code=403,
                headers=rate_headers,
            )
        if stream == "budget_detail_rows":
            rows = list(self.children.get(view_id or 0, {}).values())
            return self._page(request, rows, rate_headers, send_total=True)
        return self._list(request, stream, company_id, project_id, query, rate_headers)

    def _route(
        self, path: str, query: dict[str, str]
    ) -> tuple[int | None, int | None, str | None, int | None]:
        def project(pid: str | None) -> tuple[int | None, int | None]:
            if pid is None or not pid.isdigit():
                return None, None
            return self.project_company.get(int(pid)), int(pid)

        if path in ("/rest/v1.1/projects", "/rest/v1.0/projects"):
            cid = query.get("company_id", "")
            return (int(cid) if cid.isdigit() else None), None, "projects", None
        if m := re.fullmatch(r"/rest/v1\.[0-3]/companies/(\d+)/users", path):
            return int(m.group(1)), None, "users", None
        if path == "/rest/v1.0/vendors":
            cid = query.get("company_id", "")
            return (int(cid) if cid.isdigit() else None), None, "vendors", None
        if m := re.fullmatch(r"/rest/v1\.0/projects/(\d+)/rfis/recycle_bin", path):
            return *project(m.group(1)), "rfis:recycle_bin", None
        if m := re.fullmatch(r"/rest/v1\.1/projects/(\d+)/submittals/recycle_bin", path):
            return *project(m.group(1)), "submittals:recycle_bin", None
        if m := re.fullmatch(r"/rest/v1\.0/projects/(\d+)/manpower_logs", path):
            return *project(m.group(1)), "daily_manpower_logs", None
        if m := re.fullmatch(r"/rest/v1\.0/budget_views/(\d+)/detail_rows", path):
            cid, pid = project(query.get("project_id"))
            return cid, pid, "budget_detail_rows", int(m.group(1))
        for name, (pattern, _, _) in PROJECT_STREAMS.items():
            if m := re.fullmatch(pattern, path):
                pid = m.groupdict().get("pid") or query.get("project_id")
                return *project(pid), name, None
        return None, None, None, None

    def _list(
        self,
        request: Request,
        stream: str,
        company_id: int,
        project_id: int | None,
        query: dict[str, str],
        headers: dict[str, str],
    ) -> Response:
        recycle = stream.endswith(":recycle_bin")
        name = stream.split(":")[0]
        key = (name, company_id, project_id)
        with self.lock:
            live = list(self.records.get(key, {}).values())
            gone = list(self.deleted.get(key, {}).values())
        rows = live
        if recycle:
            rows = gone
        elif name in INCLUDE_DELETED:
            mode = query.get("filters[include_deleted]")
            rows = gone if mode == "only" else live + gone if mode == "with" else live
        if name == "daily_manpower_logs":
            today = datetime.now(UTC).date().isoformat()
            start = query.get("start_date") or query.get("log_date") or today
            end = query.get("end_date") or query.get("log_date") or today
            rows = [r for r in rows if start <= r["date"] <= end]
        span = query.get("filters[updated_at]")
        if span is not None:
            if "..." not in span:
                return JSONResponse(
                    {"errors": "filters[updated_at] must be a range"},
                    status_code=400,
                    headers=headers,
                )
            low, high = (parse_time(part) for part in span.strip('"').split("...", 1))
            rows = [r for r in rows if low <= parse_time(r["updated_at"]) <= high]
        rows.sort(key=lambda r: r["id"])
        send_total = PROJECT_STREAMS.get(name, ("", True, True))[2]
        return self._page(request, rows, headers, send_total=send_total)

    def _page(
        self,
        request: Request,
        rows: list[dict[str, Any]],
        headers: dict[str, str],
        *,
        send_total: bool,
    ) -> Response:
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        try:
            per_page = min(PAGE_CAP, max(1, int(query.get("per_page", PAGE_CAP))))
            page = max(1, int(query.get("page", 1)))
        except ValueError:
            return JSONResponse({"errors": "bad paging"}, status_code=400, headers=headers)
        last = max(1, math.ceil(len(rows) / per_page))
        chunk = rows[(page - 1) * per_page : page * per_page]

        def link(number: int) -> str:
            q = {k: v for k, v in query.items() if k not in ("page", "per_page")}
            q |= {"page": str(number), "per_page": str(per_page)}
            return f"{self.url}{request.url.path}?{urlencode(q)}"

        parts = [f'<{link(last)}>;  rel="last"']
        if page < last:
            parts.append(f' <{link(page + 1)}> ; rel="next"')
        parts.append(f'<{link(1)}>; rel="first"')
        if page > 1:
            parts.append(f'<{link(page - 1)}>;rel="prev"')
        out = dict(headers) | {"Link": " ,  ".join(parts), "Per-Page": str(per_page)}
        if send_total:
            out["Total"] = str(len(rows))
        body = json.dumps(chunk, ensure_ascii=False).encode()
        return Response(body, media_type="application/json; charset=utf-8", headers=out)


class FakeServer:
    """Serves a FakeProcore on a free loopback port from a thread."""

    def __init__(self, fake: FakeProcore) -> None:
        self.fake = fake
        config = uvicorn.Config(
            fake.app, host="127.0.0.1", port=0, log_level="error", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FakeProcore:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the fake Procore did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.fake.url = f"http://127.0.0.1:{port}"
        return self.fake

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
