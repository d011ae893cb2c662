"""The admin REST API (SPEC section 4): installations, credentials, sync runs and the audit trail.

Every route checks the caller's role; every change goes through `app.admin.actions`, which the
console uses too, and leaves an audit entry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response, status

from app.admin import actions, audit_routes, destination_test, views, webhook_routes
from app.admin import responses as r
from app.admin.auth import (
    Principal,
    Reader,
    api_actor,
    bearer,
    current_principal,
)
from app.core.errors import BadRequest
from app.deps import RuntimeDep, SessionDep
from app.installations import repository, service
from app.installations.models import InstallationStatus
from app.installations.schemas import (
    CredentialsIn,
    InstallationCreate,
    InstallationDetail,
    InstallationPatch,
    InstallationPatchAnswer,
    InstallationView,
    SigningSecretAnswer,
    SigningSecretIn,
    UninstallAnswer,
)
from app.runs import queue
from app.runs.models import RunStatus
from app.runs.schemas import SyncQueued, SyncRequest, SyncRunSummary, SyncRunView

router = APIRouter(
    prefix="/admin/v1",
    tags=["admin"],
    dependencies=[Depends(bearer), Depends(current_principal)],
    responses=r.ALWAYS,
)

RunId = Annotated[
    str, Path(pattern=r"^[0-9A-Za-z-]{1,64}$", description="id of a sync run (a UUID)")
]
Changer = Annotated[Principal, Depends(current_principal)]


def caller(request: Request, principal: Principal) -> actions.Caller:
    """The principal and its audit identity for this request."""
    return actions.Caller(principal, api_actor(request, principal))


@router.get("/installations", response_model=list[InstallationView])
async def list_installations(
    session: SessionDep,
    rt: RuntimeDep,
    response: Response,
    _reader: Reader,
    status_filter: Annotated[InstallationStatus | None, Query(alias="status")] = None,
    paused: Annotated[bool | None, Query(description="only paused (or unpaused) ones")] = None,
    after: Annotated[
        int | None, Query(ge=0, lt=2**63, description="company id to page after")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> list[InstallationView]:
    """Every installation: company, status, schedule, streams, destination (redacted), last run.

    Ordered by company id. A full page carries `Link: <...?after=ID&limit=N>; rel="next"`.
    """
    rows = await repository.list_page(
        session, status=status_filter, paused=paused, after=after, limit=limit
    )
    if len(rows) == limit:
        query = f"after={rows[-1].company_id}&limit={limit}"
        if status_filter is not None:
            query += f"&status={status_filter.value}"
        if paused is not None:
            query += f"&paused={str(paused).lower()}"
        response.headers["Link"] = f'</admin/v1/installations?{query}>; rel="next"'
    return [await views.installation_view(session, rt, inst) for inst in rows]


@router.post(
    "/installations",
    status_code=status.HTTP_201_CREATED,
    response_model=InstallationView,
    responses={
        200: {"model": InstallationView, "description": "re-activated or already active"},
        400: r.REJECTED,
        404: r.NOT_FOUND,
        503: r.UNAVAILABLE,
    },
)
async def create_installation(
    body: Annotated[
        InstallationCreate,
        Body(
            openapi_examples={"create": {"summary": "by company id", "value": {"company_id": 123}}}
        ),
    ],
    session: SessionDep,
    rt: RuntimeDep,
    response: Response,
    request: Request,
    principal: Changer,
) -> InstallationView:
    """Creates (201) or re-activates (200) an installation for a company `/companies` lists.

    Needs the admin role."""
    env = body.environment.value if body.environment else None
    inst, created = await actions.create_installation(
        session, rt, caller(request, principal), body.company_id, env
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    rt.wake_scheduler()
    return await views.installation_view(session, rt, inst)


@router.get(
    "/installations/{company_id}",
    response_model=InstallationDetail,
    responses={404: r.NOT_FOUND},
)
async def get_installation(
    company_id: r.CompanyId, session: SessionDep, rt: RuntimeDep, _reader: Reader
) -> InstallationDetail:
    """One installation with its per-stream state (cursor, last success, records)."""
    inst = await service.require(session, company_id)
    return await views.installation_detail(session, rt, inst)


@router.patch(
    "/installations/{company_id}",
    response_model=InstallationPatchAnswer,
    responses={404: r.NOT_FOUND},
)
async def patch_installation(
    company_id: r.CompanyId,
    patch: Annotated[
        InstallationPatch,
        Body(
            openapi_examples={
                "pause": {"summary": "pause the schedule", "value": {"paused": True}},
                "schedule": {
                    "summary": "every 15 minutes, two streams",
                    "value": {"schedule": "every 15m", "streams": ["projects", "rfis"]},
                },
                "destination": {
                    "summary": "another destination",
                    "value": {"destination_url": "postgresql://etl:secret@db/warehouse"},
                },
            }
        ),
    ],
    session: SessionDep,
    rt: RuntimeDep,
    request: Request,
    principal: Changer,
) -> InstallationPatchAnswer:
    """Changes schedule, streams, destination_url or paused.

    Pausing and resuming needs the operator role; any other change needs admin. When the
    change gives an https:// destination its first signing secret, the answer shows it once
    as `signing_secret`.
    """
    inst, secret = await actions.patch_installation(
        session, rt, caller(request, principal), company_id, patch
    )
    view = await views.installation_view(session, rt, inst)
    return InstallationPatchAnswer(**view.model_dump(), signing_secret=secret)


@router.post(
    "/installations/{company_id}/destination/signing-secret",
    status_code=status.HTTP_201_CREATED,
    response_model=SigningSecretAnswer,
    responses={404: r.NOT_FOUND, 409: r.CONFLICT},
)
async def rotate_destination_signing_secret(
    company_id: r.CompanyId,
    session: SessionDep,
    rt: RuntimeDep,
    request: Request,
    principal: Changer,
    body: SigningSecretIn | None = None,
) -> SigningSecretAnswer:
    """Replaces the Standard Webhooks secret of an HTTP destination: a new one, shown only
    here, or the operator's known `signing_secret`. The replaced secret keeps signing beside
    it (a second signature in `webhook-signature`) for `grace_seconds`. Needs the admin role."""
    given = body.signing_secret.get_secret_value() if body and body.signing_secret else None
    grace = timedelta(seconds=body.grace_seconds if body else 86_400)
    secret, until = await actions.rotate_destination_secret(
        session, rt, caller(request, principal), company_id, secret=given, grace=grace
    )
    return SigningSecretAnswer(
        company_id=company_id,
        signing_secret=None if given else secret,
        previous_valid_until=until,
    )


@router.delete(
    "/installations/{company_id}",
    response_model=UninstallAnswer,
    responses={404: r.NOT_FOUND, 409: r.CONFLICT, 503: r.UNAVAILABLE},
)
async def delete_installation(
    company_id: r.CompanyId,
    rt: RuntimeDep,
    request: Request,
    principal: Changer,
    purge: Annotated[
        bool, Query(description="also delete the company's synced rows from the destination")
    ] = False,
) -> UninstallAnswer:
    """Uninstalls: stops the schedule, cancels runs, destroys the credentials; optionally purges.

    With `purge=true`, once its running sync has stopped, the company's data is purged from
    every destination it wrote to (SQL rows deleted, the file folder removed, or a signed
    `company.purge` sent to an HTTP receiver) and its remaining secrets are destroyed. A
    destination the policy now refuses is a 409, an unreachable one a 503. Needs the admin role.
    """
    return await actions.uninstall(rt, caller(request, principal), company_id, purge=purge)


@router.put(
    "/installations/{company_id}/credentials",
    response_model=InstallationView,
    responses={404: r.NOT_FOUND, 422: r.REJECTED, 503: r.UNAVAILABLE},
)
async def put_credentials(
    company_id: r.CompanyId,
    body: Annotated[
        CredentialsIn,
        Body(
            openapi_examples={
                "replace": {
                    "summary": "the company's own DMSA pair",
                    "value": {"client_id": "abc123", "client_secret": "s3cr3t"},
                }
            }
        ),
    ],
    session: SessionDep,
    rt: RuntimeDep,
    request: Request,
    principal: Changer,
) -> InstallationView:
    """Replaces the installation's DMSA credentials after Procore issues a token for them.

    The answer never contains the secret. Needs the admin role.
    """
    inst = await actions.replace_credentials(
        session,
        rt,
        caller(request, principal),
        company_id,
        body.client_id,
        body.client_secret.get_secret_value(),
    )
    return await views.installation_view(session, rt, inst)


@router.post(
    "/installations/{company_id}/syncs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncQueued,
    responses={404: r.NOT_FOUND, 409: r.CONFLICT},
)
async def queue_sync(
    company_id: r.CompanyId,
    session: SessionDep,
    rt: RuntimeDep,
    request: Request,
    principal: Changer,
    body: Annotated[
        SyncRequest | None,
        Body(
            openapi_examples={
                "incremental": {"summary": "what changed since the last run", "value": {}},
                "full": {"summary": "re-read everything", "value": {"full_refresh": True}},
            }
        ),
    ] = None,
) -> SyncQueued:
    """Queues a run now; 409 if one is already running for that company. Needs operator."""
    run = await actions.queue_sync(
        session,
        rt,
        caller(request, principal),
        company_id,
        full_refresh=bool(body and body.full_refresh),
    )
    return SyncQueued(run_id=run.id, status=run.status)


@router.get("/syncs", response_model=list[SyncRunView] | list[SyncRunSummary])
async def list_syncs(
    session: SessionDep,
    response: Response,
    _reader: Reader,
    view: Annotated[
        Literal["summary", "full"],
        Query(description="`summary` (default): totals only; `full`: per-stream figures too"),
    ] = "summary",
    company_id: Annotated[int | None, Query(gt=0, lt=2**63)] = None,
    status_filter: Annotated[RunStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        datetime | None, Query(description="only runs queued before this time (paging)")
    ] = None,
) -> list[SyncRunView] | list[SyncRunSummary]:
    """Run history, newest first, as summaries (`?view=full` adds the per-stream figures that
    `GET /admin/v1/syncs/{run_id}` shows).

    A full page carries `Link: <...?before=TIME&limit=N>; rel="next"` to the older runs.
    """
    if before is not None:
        try:  # a time without a zone is taken as UTC
            before = before.replace(tzinfo=UTC) if before.tzinfo is None else before.astimezone(UTC)
        except (OverflowError, ValueError):
            raise BadRequest("before: out of range", details=[{"field": "before"}]) from None
    runs = await queue.history(
        session, company_id=company_id, status=status_filter, limit=limit, before=before
    )
    if len(runs) == limit:
        query: dict[str, str | int] = {"before": runs[-1].queued_at.isoformat(), "limit": limit}
        if company_id is not None:
            query["company_id"] = company_id
        if status_filter is not None:
            query["status"] = status_filter.value
        if view == "full":
            query["view"] = view
        response.headers["Link"] = f'</admin/v1/syncs?{urlencode(query)}>; rel="next"'
    if view == "full":
        return [SyncRunView.of(run) for run in runs]
    return [SyncRunSummary.of(run) for run in runs]


@router.get("/syncs/{run_id}", response_model=SyncRunView, responses={404: r.NOT_FOUND})
async def get_sync(run_id: RunId, session: SessionDep, _reader: Reader) -> SyncRunView:
    """One run: status, times, per-stream records and API requests, error."""
    run = await queue.get(session, run_id)
    if run is None:
        raise queue.RunNotFound(f"sync run {run_id!r} does not exist")
    return SyncRunView.of(run)


@router.post(
    "/syncs/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncRunView,
    responses={404: r.NOT_FOUND, 409: r.CONFLICT},
)
async def cancel_sync(
    run_id: RunId, session: SessionDep, rt: RuntimeDep, request: Request, principal: Changer
) -> SyncRunView:
    """Stops a queued or running run (a running one stops at its next page). Needs operator."""
    run = await actions.cancel_sync(session, rt, caller(request, principal), run_id)
    return SyncRunView.of(run)


router.include_router(audit_routes.router)
router.include_router(destination_test.router)
router.include_router(webhook_routes.router)
