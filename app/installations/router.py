"""The install callback endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy.exc import IntegrityError

from app.core.deps import RuntimeDep
from app.installations import callbacks
from app.installations.schemas import CallbackAnswer

router = APIRouter(tags=["callbacks"])


@router.post(
    "/callbacks/installations",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=CallbackAnswer,
    responses={400: {"description": "malformed body"}, 401: {"description": "bad signature"}},
)
async def installation_callback(request: Request, rt: RuntimeDep) -> CallbackAnswer:
    """Receives a Standard Webhooks-signed installation event."""
    body = await request.body()
    headers = {key.lower(): value for key, value in request.headers.items()}
    webhook_id = callbacks.check_signature(rt, headers, body)
    async with rt.sessions() as session, session.begin():
        answer = await callbacks.replayed_answer(session, webhook_id)
        if answer is not None:
            return answer
    event = callbacks.parse_event(body)
    try:
        async with rt.sessions() as session, session.begin():
            answer = await callbacks.apply_event(session, rt, webhook_id, event)
    except IntegrityError:
        async with rt.sessions() as session:
            replay = await callbacks.replayed_answer(session, webhook_id)
        if replay is None:
            raise
        return replay
    rt.wake_scheduler()
    return answer
