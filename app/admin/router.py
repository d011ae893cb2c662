"""The admin REST API (SPEC section 4): installations, credentials and sync runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, status

from app.admin import views
from app.admin.auth import AdminDep
from app.core.deps import RuntimeDep, SessionDep
from app.core.errors import BadRequest
from app.installations import repository, service
from app.installations.schemas import (
    CredentialsIn,
    InstallationDetail,
    InstallationPatch,
    InstallationView,
)
from app.scheduling import queue
from app.sync.models import RunStatus
from app.sync.schemas import SyncQueued, SyncRequest, SyncRunList, SyncRunView

router = APIRouter(prefix="/admin/v1", tags=["admin"])
ERRORS: dict[int | str, dict[str, Any]] = {401: {"description": "missing or invalid bearer token"}}


@router.get("/installations", response_model=list[InstallationView], responses=ERRORS)
async def list_installations(
    _: AdminDep,
    session: SessionDep,
    rt: RuntimeDep,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    after: Annotated[int | None, Query(description="company id to page after")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> list[InstallationView]:
    """Every installation: company, status, schedule, streams, destination (redacted), last run."""
    rows = await repository.list_page(session, status=status_filter, after=after, limit=limit)
    return [await views.installation_view(session, rt, inst) for inst in rows]


@router.get(
    "/installations/{company_id}",
    response_model=InstallationDetail,
    responses={**ERRORS, 404: {"description": "unknown company"}},
)
async def get_installation(
    company_id: int, _: AdminDep, session: SessionDep, rt: RuntimeDep
) -> InstallationDetail:
    """One installation with its per-stream state (cursor, last success, records)."""
    inst = await service.get_or_404(session, company_id)
    return await views.installation_detail(session, rt, inst)


@router.patch(
    "/installations/{company_id}",
    response_model=InstallationView,
    responses={**ERRORS, 400: {"description": "invalid value"}, 404: {"description": "unknown"}},
)
async def patch_installation(
    company_id: int,
    patch: Annotated[
        InstallationPatch,
        Body(
            openapi_examples={
                "pause": {"value": {"paused": True}},
                "schedule": {"value": {"schedule": "every 15m", "streams": "projects,rfis"}},
            }
        ),
    ],
    _: AdminDep,
    session: SessionDep,
    rt: RuntimeDep,
) -> InstallationView:
    """Changes schedule, streams, destination_url or paused."""
    inst = await service.apply_patch(session, rt, company_id, patch)
    return await views.installation_view(session, rt, inst)


@router.put(
    "/installations/{company_id}/credentials",
    response_model=InstallationView,
    responses={**ERRORS, 404: {"description": "unknown"}, 422: {"description": "rejected"}},
)
async def put_credentials(
    company_id: int, body: CredentialsIn, _: AdminDep, session: SessionDep, rt: RuntimeDep
) -> InstallationView:
    """Replaces the installation's DMSA credentials after Procore accepts them."""
    inst = await service.replace_credentials(
        session, rt, company_id, body.client_id, body.client_secret.get_secret_value()
    )
    return await views.installation_view(session, rt, inst)


@router.post(
    "/installations/{company_id}/syncs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncQueued,
    responses={**ERRORS, 404: {"description": "unknown"}, 409: {"description": "already running"}},
)
async def queue_sync(
    company_id: int,
    _: AdminDep,
    session: SessionDep,
    rt: RuntimeDep,
    body: Annotated[SyncRequest | None, Body()] = None,
) -> SyncQueued:
    """Queues a run now."""
    inst = await service.get_or_404(session, company_id)
    service.ensure_syncable(inst)
    run, _created = await queue.enqueue(
        session, company_id, trigger="manual", full_refresh=bool(body and body.full_refresh)
    )
    rt.wake_scheduler()
    return SyncQueued(run_id=run.id, status=run.status)


@router.get("/syncs", response_model=SyncRunList, responses=ERRORS)
async def list_syncs(
    _: AdminDep,
    session: SessionDep,
    company_id: int | None = None,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: datetime | None = None,
) -> SyncRunList:
    """Run history, newest first."""
    if status_filter is not None and status_filter not in set(RunStatus):
        raise BadRequest(
            f"status: must be one of {', '.join(RunStatus)}", details=[{"field": "status"}]
        )
    runs = await queue.history(
        session, company_id=company_id, status=status_filter, limit=limit, before=before
    )
    items = [SyncRunView.of(run) for run in runs]
    next_before = runs[-1].queued_at if len(runs) == limit else None
    return SyncRunList(items=items, next_before=next_before)


@router.get(
    "/syncs/{run_id}", response_model=SyncRunView, responses={**ERRORS, 404: {"description": "?"}}
)
async def get_sync(run_id: str, _: AdminDep, session: SessionDep) -> SyncRunView:
    """One run: status, times, per-stream records and API requests, error."""
    return SyncRunView.of(await queue.get(session, run_id))


@router.post(
    "/syncs/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncRunView,
    responses={**ERRORS, 404: {"description": "unknown"}, 409: {"description": "already over"}},
)
async def cancel_sync(run_id: str, _: AdminDep, session: SessionDep) -> SyncRunView:
    """Stops a queued or running run (a running one stops at its next page)."""
    return SyncRunView.of(await queue.cancel(session, run_id))
