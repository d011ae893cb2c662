"""`GET /admin/v1/audit`: the audit trail, read through the admin API."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response

from app.admin.auth import Reader
from app.audit import service as audit
from app.audit.schemas import Action, AuditEventView
from app.deps import SessionDep

router = APIRouter(tags=["admin"])


@router.get("/audit", response_model=list[AuditEventView])
async def list_audit(
    session: SessionDep,
    response: Response,
    _reader: Reader,
    action: Annotated[Action | None, Query(description="only this action")] = None,
    actor: Annotated[str | None, Query(max_length=64, description="only this token name")] = None,
    company_id: Annotated[int | None, Query(gt=0, lt=2**63)] = None,
    before: Annotated[
        int | None, Query(ge=1, lt=2**63, description="entry id to page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[AuditEventView]:
    """The audit trail, newest first: token name, action, target, time, source address and
    before/after (secrets redacted).

    A full page carries `Link: <...?before=ID&limit=N>; rel="next"` to the older entries.
    """
    events = await audit.listing(
        session,
        action=action.value if action else None,
        actor=actor,
        company_id=company_id,
        before_id=before,
        limit=limit,
    )
    if len(events) == limit:
        query: dict[str, str | int] = {"before": events[-1].id, "limit": limit}
        if action is not None:
            query["action"] = action.value
        if actor is not None:
            query["actor"] = actor
        if company_id is not None:
            query["company_id"] = company_id
        response.headers["Link"] = f'</admin/v1/audit?{urlencode(query)}>; rel="next"'
    return list(events)
