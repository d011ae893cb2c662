"""The webhook receiver: `POST /webhooks/procore/{company_id}` (SPEC section 8).

Order matters: the `Authorization` header is checked (constant time) before the body is
parsed, so an unauthenticated caller is answered 401 and nothing is stored or even decoded;
then the size and the v2.0 payload are checked (413, 400); then the event is stored and only
then answered 200, well within Procore's 5-second timeout. Procore documents no signature:
the static header set in the hook's `destination_headers` is the only proof (procore-api.md
section 8), so the secret is long, random and per installation.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from app.core import json_codec
from app.core.database import utcnow
from app.core.errors import BadRequest, PayloadTooLarge, ServiceUnavailable, Unauthorized
from app.core.http import ErrorResponse, inline_schema
from app.core.logging import get_logger
from app.procore.catalog import STREAMS, Scope
from app.webhooks.inbox import Inbox
from app.webhooks.metrics import (
    WEBHOOK_DEDUPLICATED,
    WEBHOOK_DROPPED,
    WEBHOOK_RECEIVED,
    WEBHOOK_REFUSED,
)
from app.webhooks.resources import stream_of
from app.webhooks.schemas import Delivery, DeliveryAnswer
from app.webhooks.subscriptions import RECEIVER_PATH

router = APIRouter(tags=["webhooks"])
log = get_logger(__name__)

CompanyId = Annotated[int, Path(gt=0, lt=2**63, description="Procore company id")]

OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": "Authorization",
            "in": "header",
            "required": True,
            "description": "`Bearer <the installation's webhook secret>`, as set in the hook's "
            "destination_headers",
            "schema": {"type": "string"},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": inline_schema(Delivery.model_json_schema()),
                "examples": {
                    "update": {
                        "value": {
                            "id": 1099511627776,
                            "ulid": "01JD8X4Q6N3V0K5Z2M7T9R1B3C",
                            "timestamp": "2026-12-01T09:00:00.123456Z",
                            "user_id": 42,
                            "company_id": 123,
                            "project_id": 456,
                            "api_version": "v2.0",
                            "event_type": "update",
                            "resource_name": "RFIs",
                            "resource_id": 789,
                        }
                    }
                },
            }
        },
    },
}


def _answer(status: str, reason: str | None = None) -> Response:
    body = DeliveryAnswer(status=status, reason=reason)
    return Response(json_codec.dumps(body.model_dump()), media_type="application/json")


def _refuse(reason: str) -> None:
    WEBHOOK_REFUSED.labels(reason).inc()


@router.post(
    RECEIVER_PATH + "/{company_id}",
    response_model=DeliveryAnswer,
    responses={
        400: {"model": ErrorResponse, "description": "not a v2.0 delivery (names the field)"},
        401: {"model": ErrorResponse, "description": "missing or wrong Authorization header"},
        413: {"model": ErrorResponse, "description": "body over the size limit"},
        503: {"model": ErrorResponse, "description": "not stored (Procore delivers it again)"},
    },
    openapi_extra=OPENAPI,
)
async def receive(company_id: CompanyId, request: Request) -> Response:
    """Stores one Procore webhook delivery, then answers 200 (`stored`, `duplicate`, or
    `dropped` for a company that is gone or a resource no selected stream reads)."""
    inbox: Inbox = request.app.state.webhook_inbox
    try:
        endpoint = await inbox.endpoint(company_id)
    except SQLAlchemyError:
        _refuse("unavailable")
        raise ServiceUnavailable("the service database is unavailable; deliver again") from None
    if not inbox.authenticate(endpoint, request.headers.get("authorization")):
        _refuse("unauthorized")
        raise Unauthorized("missing or wrong Authorization header")
    body = await request.body()
    limit = request.app.state.runtime.settings.webhook_max_body_bytes
    if len(body) > limit:
        _refuse("too_large")
        raise PayloadTooLarge(f"a delivery is at most {limit} bytes")
    delivery = _parse(body)
    reason = _drop_reason(delivery, company_id, endpoint.active, endpoint.streams)
    if reason is not None:
        WEBHOOK_DROPPED.labels(reason).inc()
        return _answer("dropped", reason)
    stream = stream_of(delivery.resource_name)
    assert stream is not None
    company_scope = STREAMS[stream].scope == Scope.company
    row = {
        "dedupe_key": delivery.dedupe_key,
        "event_id": delivery.id,
        "company_id": company_id,
        "project_id": None if company_scope else delivery.project_id,
        "stream": stream,
        "resource_name": delivery.resource_name,
        "resource_id": delivery.resource_id,
        "event_type": delivery.event_type,
        "occurred_at": delivery.timestamp,
        "received_at": utcnow(),
        "run_id": None,
        "attempts": 0,
    }
    try:
        new = await inbox.store(row)
    except (SQLAlchemyError, OSError) as exc:
        _refuse("unavailable")
        log.warning("webhook delivery not stored", error=type(exc).__name__)
        raise ServiceUnavailable("the service database is unavailable; deliver again") from None
    if new:
        WEBHOOK_RECEIVED.inc()
        return _answer("stored")
    WEBHOOK_DEDUPLICATED.inc()
    return _answer("duplicate")


def _parse(body: bytes) -> Delivery:
    try:
        return Delivery.model_validate_json(body)
    except ValidationError as exc:
        _refuse("invalid")
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        field = ".".join(str(part) for part in first.get("loc", ())) or "body"
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise BadRequest(
            f"not a Procore v2.0 webhook delivery: {field}: {message}",
            details=[{"field": field, "message": message}],
        ) from None


def _drop_reason(
    delivery: Delivery, company_id: int, active: bool, streams: frozenset[str]
) -> str | None:
    """Why an authenticated delivery is answered 2xx and not stored, if it is."""
    if delivery.company_id != company_id:
        return "unknown_company"
    if not active:
        return "uninstalled"
    stream = stream_of(delivery.resource_name)
    if stream is None:
        return "unknown_resource"
    if stream not in streams:
        return "unselected_stream"
    if STREAMS[stream].scope == Scope.project and delivery.project_id is None:
        return "no_project"
    return None
