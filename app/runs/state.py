"""Queries of the stream_states table (cursors, checkpoints, known ids)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.runs.models import StreamState

COMPANY_SCOPE = 0  # project_id used for company-scoped streams


async def load(
    session: AsyncSession, company_id: int, stream: str, project_id: int | None
) -> StreamState:
    """The state row of one stream unit, created empty when missing."""
    key = (company_id, stream, project_id or COMPANY_SCOPE)
    row = await session.get(StreamState, key)
    if row is None:
        row = StreamState(
            company_id=company_id, stream=stream, project_id=project_id or COMPANY_SCOPE, records=0
        )
        session.add(row)
        await session.flush()
    return row


async def for_company(session: AsyncSession, company_id: int) -> Sequence[StreamState]:
    """Every state row of an installation."""
    query = (
        select(StreamState)
        .where(StreamState.company_id == company_id)
        .order_by(StreamState.stream, StreamState.project_id)
    )
    return (await session.scalars(query)).all()


async def reset(session: AsyncSession, company_id: int) -> None:
    """Forgets every cursor, checkpoint and known id of an installation (next run is full)."""
    await session.execute(delete(StreamState).where(StreamState.company_id == company_id))
