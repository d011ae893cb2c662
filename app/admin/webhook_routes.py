"""Freshness, the request budget and webhook settings of an installation (issue 14;
docs/decisions/0019-webhooks.md). Reading needs `read`; changes need `configure` and leave an
audit entry, as every admin change does."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from app.admin import responses as r
from app.admin.auth import Configurer, Reader, api_actor
from app.audit import service as audit
from app.audit.schemas import Action
from app.deps import RuntimeDep, SessionDep
from app.webhooks import service as webhooks
from app.webhooks.schemas import FreshnessView, SecretRotated, WebhookSettingsIn

router = APIRouter(tags=["admin"])


@router.get(
    "/installations/{company_id}/freshness",
    response_model=FreshnessView,
    responses={404: r.NOT_FOUND},
)
async def get_freshness(
    company_id: r.CompanyId, session: SessionDep, rt: RuntimeDep, _reader: Reader
) -> FreshnessView:
    """Per stream: the time up to which its data is known complete (its stalest unit), whether
    webhooks cover it and the events not applied yet; the webhook subscription; the request
    budget used this hour."""
    return await webhooks.freshness(session, rt, company_id)


@router.patch(
    "/installations/{company_id}/webhooks",
    response_model=FreshnessView,
    responses={404: r.NOT_FOUND},
)
async def patch_webhooks(
    company_id: r.CompanyId,
    body: WebhookSettingsIn,
    session: SessionDep,
    rt: RuntimeDep,
    request: Request,
    principal: Configurer,
) -> FreshnessView:
    """Changes how often units of webhook-covered streams are read in full (reconciliation)."""
    view = await webhooks.update_settings(session, rt, company_id, body)
    await audit.record(
        session,
        api_actor(request, principal),
        Action.webhooks_update,
        target=f"installation {company_id}",
        company_id=company_id,
        after=body.model_dump(mode="json"),
    )
    return view


@router.post(
    "/installations/{company_id}/webhooks/secret",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SecretRotated,
    responses={404: r.NOT_FOUND},
)
async def rotate_webhook_secret(
    company_id: r.CompanyId,
    session: SessionDep,
    rt: RuntimeDep,
    request: Request,
    principal: Configurer,
) -> SecretRotated:
    """Replaces the secret Procore's deliveries carry; Procore's hook is updated at the next
    subscription check (at once), and the old secret is accepted for
    CONNECTOR_WEBHOOK_SECRET_GRACE_SECONDS. The secret itself is never shown."""
    until = await webhooks.rotate_secret(session, rt, company_id)
    await audit.record(
        session,
        api_actor(request, principal),
        Action.webhook_secret_rotate,
        target=f"installation {company_id}",
        company_id=company_id,
        after={"previous_valid_until": until.isoformat() if until else None},
    )
    return SecretRotated(company_id=company_id, previous_valid_until=until)
