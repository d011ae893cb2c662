"""The console's pages: installations, one installation, runs, one run, health, audit."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app.admin import views
from app.alerts import service as alerts
from app.audit import service as audit
from app.audit.schemas import Action
from app.console import repository
from app.console.web import SignedInDep, error_page, render
from app.core.database import utcnow
from app.core.errors import ConnectorError
from app.credentials import service as secrets
from app.credentials.models import SecretKind
from app.deps import RuntimeDep, SessionDep
from app.destinations import redact_destination_url
from app.health.router import readiness
from app.installations import service
from app.installations.models import InstallationStatus
from app.runs import queue
from app.runs.models import ACTIVE_STATUSES, RunStatus
from app.runs.schemas import SyncRunView

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZES = (25, 50, 100, 200)
STATUSES = [s.value for s in InstallationStatus] + ["disconnected"]
RESULTS = [s.value for s in RunStatus] + ["none"]
NOTICES = {
    "sync_queued": "Sync queued.",
    "paused": "Schedule paused.",
    "resumed": "Schedule resumed.",
    "settings_saved": "Schedule and streams saved.",
    "destination_saved": "Destination changed; the next run copies everything to it.",
    "uninstalled": "Installation uninstalled.",
    "purged": "Installation uninstalled and its data purged.",
    "cancel_requested": "Cancel requested; a running sync stops at its next page.",
}


def _int(text: str | None, *, low: int = 1, high: int = 2**63 - 1) -> int | None:
    """A positive integer from a query string, or None for anything else."""
    if text is None or not text.strip().isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None


@router.get("")
@router.get("/")
async def home() -> RedirectResponse:
    """The console starts at the installations."""
    return RedirectResponse("/console/installations", status_code=303)


@router.get("/installations")
async def installations(
    request: Request,
    signed: SignedInDep,
    session: SessionDep,
    rt: RuntimeDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    status: str | None = None,
    paused: str | None = None,
    result: str | None = None,
    after: str | None = None,
    limit: str | None = None,
) -> Response:
    """Every installation, paged by company id, with filters and a search."""
    size = _int(limit) or 50
    size = size if size in PAGE_SIZES else 50
    status = status if status in STATUSES else None
    result = result if result in RESULTS else None
    paused_flag = {"yes": True, "no": False}.get(paused or "")
    search = (q or "").strip() or None
    rows = await repository.installations_page(
        session,
        search=search,
        status=status,
        paused=paused_flag,
        last_result=result,
        after=_int(after, low=0),
        limit=size,
    )
    shown = [inst.company_id for inst, _ in rows]
    successes = await repository.last_successes(session, shown)
    # One query for the page's destinations; an installation without one uses the default.
    urls = await secrets.get_secrets(session, rt.keyring, shown, SecretKind.destination_url)
    default = rt.settings.destination_url.get_secret_value()
    items: list[dict[str, Any]] = []
    for inst, run in rows:
        destination = redact_destination_url(urls.get(inst.company_id, default))
        items.append(
            {
                "inst": inst,
                "run": run,
                "destination": destination,
                "last_success": successes.get(inst.company_id),
                "health": {k: int(v) for k, v in (inst.health or {}).items() if int(v)},
            }
        )
    filters = {
        "q": search,
        "status": status,
        "paused": paused if paused_flag is not None else None,
        "result": result,
        "limit": size if size != 50 else None,
    }
    kept = {k: v for k, v in filters.items() if v is not None}
    next_url = None
    if len(rows) == size:
        next_url = "/console/installations?" + urlencode({**kept, "after": rows[-1][0].company_id})
    return render(
        request,
        "installations.html",
        {
            "items": items,
            "filters": filters,
            "statuses": STATUSES,
            "results": RESULTS,
            "sizes": PAGE_SIZES,
            "counts": await repository.status_counts(session),
            "paused_total": await repository.paused_count(session),
            "next_url": next_url,
            "first_url": "/console/installations?" + urlencode(kept) if after else None,
        },
        signed=signed,
    )


@router.get("/installations/{company_id}")
async def installation(
    request: Request, company_id: int, signed: SignedInDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """One installation: state per stream, recent runs, and what can be done to it."""
    try:
        inst = await service.require(session, company_id)
    except ConnectorError as exc:
        return error_page(request, signed, exc)
    detail = await views.installation_detail(session, rt, inst)
    runs = await queue.history(session, company_id=company_id, status=None, limit=10)
    return render(
        request,
        "installation.html",
        {
            "inst": detail,
            "runs": [SyncRunView.of(run) for run in runs],
            "notice": NOTICES.get(request.query_params.get("done", "")),
            "http_destination": detail.destination.lower().startswith(("http://", "https://")),
        },
        signed=signed,
    )


@router.get("/installations/{company_id}/confirm/{what}")
async def confirm(
    request: Request, company_id: int, what: str, signed: SignedInDep, session: SessionDep
) -> Response:
    """The confirmation page of a destructive action (destination, signing secret, uninstall)."""
    if what not in ("destination", "signing-secret", "uninstall"):
        return RedirectResponse(f"/console/installations/{company_id}", status_code=303)
    try:
        inst = await service.require(session, company_id)
    except ConnectorError as exc:
        return error_page(request, signed, exc)
    return render(request, "confirm.html", {"inst": inst, "what": what}, signed=signed)


@router.get("/runs")
async def runs(
    request: Request,
    signed: SignedInDep,
    session: SessionDep,
    company_id: str | None = None,
    status: str | None = None,
    before: str | None = None,
) -> Response:
    """Run history, newest first; running ones update themselves."""
    company = _int(company_id)
    status = status if status in [s.value for s in RunStatus] else None
    before_run = await queue.get(session, before) if before and len(before) <= 64 else None
    rows = await queue.history(
        session,
        company_id=company,
        status=status,
        limit=50,
        before=before_run.queued_at if before_run else None,
    )
    views_ = [SyncRunView.of(run) for run in rows]
    names = await repository.company_names(session, [run.company_id for run in rows])
    kept = {k: v for k, v in {"company_id": company, "status": status}.items() if v}
    next_url = None
    if len(rows) == 50:
        next_url = "/console/runs?" + urlencode({**kept, "before": rows[-1].id})
    return render(
        request,
        "runs.html",
        {
            "runs": views_,
            "names": names,
            "filters": {"company_id": company, "status": status},
            "statuses": [s.value for s in RunStatus],
            "next_url": next_url,
            "notice": NOTICES.get(request.query_params.get("done", "")),
        },
        signed=signed,
    )


@router.get("/runs/{run_id}.json")
async def run_json(run_id: str, _signed: SignedInDep, session: SessionDep) -> Response:
    """One run as the API shows it, for the page's live progress."""
    run = await queue.get(session, run_id[:64])
    if run is None:
        body = {"error": {"code": "not_found", "message": "no such run", "details": []}}
        return JSONResponse(body, status_code=404)
    return JSONResponse(SyncRunView.of(run).model_dump(mode="json"))


@router.get("/runs/{run_id}")
async def run(request: Request, run_id: str, signed: SignedInDep, session: SessionDep) -> Response:
    """One run: progress (live while it runs), per-stream figures, the whole error, cancel."""
    found = await queue.get(session, run_id[:64])
    if found is None:
        return error_page(
            request, signed, queue.RunNotFound(f"sync run {run_id[:64]!r} does not exist")
        )
    view = SyncRunView.of(found)
    names = await repository.company_names(session, [found.company_id])
    return render(
        request,
        "run.html",
        {
            "run": view,
            "company_name": names.get(found.company_id),
            "active": found.status in ACTIVE_STATUSES,
            "notice": NOTICES.get(request.query_params.get("done", "")),
        },
        signed=signed,
    )


@router.get("/health")
async def health(
    request: Request, signed: SignedInDep, session: SessionDep, rt: RuntimeDep
) -> Response:
    """Readiness, queue, workers and their leases, Procore request budget, recent failures."""
    now = utcnow()
    running = await repository.running_runs(session)
    workers: dict[str, list[Any]] = defaultdict(list)
    for held in running:
        workers[held.lease_owner or "(none)"].append(held)
    budget: dict[int, int] = defaultdict(int)
    for recent in await repository.runs_since(session, now - timedelta(hours=1)):
        budget[recent.company_id] += recent.progress.requests
    busiest = sorted(budget.items(), key=lambda item: -item[1])[:20]
    failures = await queue.history(session, company_id=None, status=RunStatus.failed, limit=20)
    companies = [c for c, _ in busiest] + [f.company_id for f in failures]
    return render(
        request,
        "health.html",
        {
            "checks": await readiness(rt),
            "depth": await queue.queue_depth(session),
            "wait": await queue.longest_wait_seconds(session),
            "workers": dict(workers),
            "now": now,
            "budget": busiest,
            "failures": [SyncRunView.of(f) for f in failures],
            "incidents": await alerts.open_incidents(session, 20),
            "names": await repository.company_names(session, companies),
            "process": {"worker_id": rt.worker_id, "runs_syncs": rt.scheduler_expected},
        },
        signed=signed,
    )


@router.get("/audit")
async def audit_page(
    request: Request,
    signed: SignedInDep,
    session: SessionDep,
    action: str | None = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    company_id: str | None = None,
    before: str | None = None,
) -> Response:
    """The audit trail, newest first, filterable like GET /admin/v1/audit."""
    action = action if action in [a.value for a in Action] else None
    company = _int(company_id)
    actor = (actor or "").strip() or None
    events = await audit.listing(
        session, action=action, actor=actor, company_id=company, before_id=_int(before), limit=50
    )
    kept = {k: v for k, v in {"action": action, "actor": actor, "company_id": company}.items() if v}
    next_url = None
    if len(events) == 50:
        next_url = "/console/audit?" + urlencode({**kept, "before": events[-1].id})
    return render(
        request,
        "audit.html",
        {
            "events": events,
            "filters": {"action": action, "actor": actor, "company_id": company},
            "actions": [a.value for a in Action],
            "next_url": next_url,
        },
        signed=signed,
    )
