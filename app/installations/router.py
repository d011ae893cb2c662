"""The install callback endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from sqlalchemy.exc import IntegrityError

from app.core.http import ErrorResponse, inline_schema
from app.deps import RuntimeDep
from app.installations import callbacks
from app.installations.schemas import CallbackAnswer, CallbackEventIn

router = APIRouter(tags=["callbacks"])


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


# The body is read raw (the signature covers the exact bytes), so it is described by hand.
CALLBACK_OPENAPI: dict[str, Any] = {
    "parameters": [
        _header("webhook-id", "unique message id; a repeated id is answered as the first time"),
        _header("webhook-timestamp", "Unix seconds; older than 5 minutes is refused"),
        _header("webhook-signature", "v1,<base64 HMAC-SHA256 of id.timestamp.body>"),
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": inline_schema(CallbackEventIn.model_json_schema()),
                "examples": {
                    "created": {
                        "value": {
                            "type": "installation.created",
                            "data": {"company_id": 123, "company_name": "Acme Builders"},
                        }
                    },
                    "deleted": {
                        "value": {"type": "installation.deleted", "data": {"company_id": 123}}
                    },
                },
            }
        },
    },
}


@router.post(
    "/callbacks/installations",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CallbackAnswer,
    responses={
        400: {"model": ErrorResponse, "description": "malformed body (names the field)"},
        401: {"model": ErrorResponse, "description": "missing, wrong or stale signature"},
        413: {"model": ErrorResponse, "description": "body over the size limit"},
    },
    openapi_extra=CALLBACK_OPENAPI,
)
async def installation_callback(request: Request, rt: RuntimeDep) -> CallbackAnswer:
    """Receives a Standard Webhooks-signed installation event."""
    body = await request.body()
    headers = {key.lower(): value for key, value in request.headers.items()}
    webhook_id = callbacks.check_signature(rt, headers, body)
    async with rt.sessions() as session, session.begin():
        replay = await callbacks.replayed_answer(session, webhook_id)
        if replay is not None:
            return replay
    event = callbacks.parse_event(body)
    answer: CallbackAnswer | None = None
    for attempt in (1, 2):
        try:
            async with rt.sessions() as session, session.begin():
                answer = await callbacks.apply_event(
                    session, rt, webhook_id, event, callbacks.sent_at(headers)
                )
            break
        except IntegrityError:
            # A concurrent request won a race: the same webhook-id (answer as it was answered),
            # or the same company (apply again, now as an update of what it created).
            async with rt.sessions() as session:
                replay = await callbacks.replayed_answer(session, webhook_id)
            if replay is not None:
                return replay
            if attempt == 2:
                raise
    assert answer is not None
    if event.type == "installation.deleted":
        rt.cancel_local_runs(company_id=event.data.company_id)
    rt.wake_scheduler()
    return answer
