"""Signed install callbacks (SPEC section 3): verify, dedupe on webhook-id, apply."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import BadRequest, Unauthorized
from app.core.logging import get_logger
from app.destinations.signing import WebhookVerificationError, verify
from app.installations import repository, service
from app.installations.models import CallbackEvent, Installation, InstallationStatus
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


def sent_at(headers: dict[str, str]) -> datetime:
    """The signed `webhook-timestamp` (checked by `check_signature`) as a UTC time."""
    return datetime.fromtimestamp(int(headers["webhook-timestamp"].strip()), UTC)


def parse_event(body: bytes) -> CallbackEventIn:
    """Parses the callback body; a bad field becomes a 400 that names it."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("body is not valid JSON") from None
    except RecursionError:
        raise BadRequest("body is nested too deeply") from None
    try:
        return CallbackEventIn.model_validate(payload)
    except RecursionError:
        raise BadRequest("body is nested too deeply") from None
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


def _superseded(inst: Installation | None, event: CallbackEventIn, at: datetime) -> bool:
    """Whether a newer lifecycle change was applied already: a late retry of an old event
    (an `installation.created` after the uninstall) must not undo it."""
    if inst is None:
        return False
    if inst.last_event_at is not None and at < inst.last_event_at:
        return True
    return (
        event.type != "installation.deleted"
        and inst.status == InstallationStatus.uninstalled
        and inst.uninstalled_at is not None
        and at < inst.uninstalled_at.replace(microsecond=0)
    )


async def apply_event(
    session: AsyncSession, rt: Runtime, webhook_id: str, event: CallbackEventIn, at: datetime
) -> CallbackAnswer:
    """Applies one install event and records its webhook-id, in the caller's transaction.

    `at` is the signed `webhook-timestamp`: an event older than the last one applied for the
    company is answered with the current status and changes nothing.
    """
    data = event.data
    current = await repository.get(session, data.company_id, for_update=True)
    if _superseded(current, event, at):
        assert current is not None
        log.info(
            "install callback older than the last applied one; ignored",
            event_type=event.type,
            company_id=data.company_id,
        )
        return await _remember(session, webhook_id, event, str(current.status))
    if event.type == "installation.deleted":
        inst = await service.uninstall(session, data.company_id, reason=service.REASON_CALLBACK)
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
    if inst is not None:
        inst.last_event_at = max(at, inst.last_event_at or at)
    answer = await _remember(session, webhook_id, event, str(status))
    log.info("install callback applied", event_type=event.type, company_id=data.company_id)
    return answer


async def _remember(
    session: AsyncSession, webhook_id: str, event: CallbackEventIn, status: str
) -> CallbackAnswer:
    """Records the webhook-id with its answer, so a repeat is answered the same way."""
    data = event.data
    answer = CallbackAnswer(company_id=data.company_id, status=status)
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
    return answer
