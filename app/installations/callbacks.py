"""Signed install callbacks (SPEC section 3): verify, dedupe on webhook-id, apply."""

from __future__ import annotations

import json

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest, Unauthorized
from app.core.logging import get_logger
from app.destinations.signing import WebhookVerificationError, verify
from app.installations import repository, service
from app.installations.models import CallbackEvent, InstallationStatus
from app.installations.schemas import CallbackAnswer, CallbackEventIn
from app.runtime import Runtime

log = get_logger(__name__)
TOLERANCE_SECONDS = 300
MAX_WEBHOOK_ID_LENGTH = 255  # the column that remembers processed ids


def check_signature(rt: Runtime, headers: dict[str, str], body: bytes) -> str:
    """Verifies the Standard Webhooks signature; returns the webhook-id or raises Unauthorized."""
    secret = rt.settings.callback_secret
    if secret is None:
        raise Unauthorized("install callbacks are refused: CONNECTOR_CALLBACK_SECRET is not set")
    try:
        verify(secret.get_secret_value(), headers, body, tolerance_seconds=TOLERANCE_SECONDS)
    except WebhookVerificationError as exc:
        raise Unauthorized(f"invalid webhook signature: {exc}") from None
    webhook_id = headers["webhook-id"]
    if len(webhook_id) > MAX_WEBHOOK_ID_LENGTH:
        raise BadRequest(f"webhook-id: longer than {MAX_WEBHOOK_ID_LENGTH} characters")
    return webhook_id


def parse_event(body: bytes) -> CallbackEventIn:
    """Parses the callback body; a bad field becomes a 400 that names it."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("body is not valid JSON") from None
    try:
        return CallbackEventIn.model_validate(payload)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(part) for part in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_input=False, include_url=False)
        ]
        first = details[0]
        raise BadRequest(f"{first['field']}: {first['message']}", details=details) from None


async def replayed_answer(session: AsyncSession, webhook_id: str) -> CallbackAnswer | None:
    """The answer given the first time this webhook-id was processed, if it was."""
    seen = await repository.get_callback(session, webhook_id)
    return CallbackAnswer.model_validate(seen.answer) if seen else None


async def apply_event(
    session: AsyncSession, rt: Runtime, webhook_id: str, event: CallbackEventIn
) -> CallbackAnswer:
    """Applies one install event and records its webhook-id, in the caller's transaction."""
    data = event.data
    if event.type == "installation.deleted":
        inst = await service.uninstall(
            session, rt.keyring, data.company_id, reason="app uninstalled (callback)"
        )
        status = inst.status if inst else InstallationStatus.uninstalled
    else:
        inst, _ = await service.install(
            session,
            rt,
            company_id=data.company_id,
            company_name=data.company_name,
            environment=data.environment.value if data.environment else None,
            client_id=data.client_id,
            client_secret=data.client_secret.get_secret_value() if data.client_secret else None,
            source="callback",
            reactivate=event.type == "installation.created",
        )
        status = inst.status
    answer = CallbackAnswer(company_id=data.company_id, status=str(status))
    session.add(
        CallbackEvent(
            webhook_id=webhook_id,
            event_type=event.type,
            company_id=data.company_id,
            answer=answer.model_dump(),
        )
    )
    # A concurrent request with the same webhook-id makes this flush fail; the router answers
    # with that request's answer.
    await session.flush()
    log.info("install callback applied", event_type=event.type, company_id=data.company_id)
    return answer
