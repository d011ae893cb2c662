"""Queries of the stored_secrets table."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.credentials.models import StoredSecret


async def get(session: AsyncSession, company_id: int, kind: str) -> StoredSecret | None:
    """Returns one stored secret of a company."""
    return await session.scalar(
        select(StoredSecret).where(StoredSecret.company_id == company_id, StoredSecret.kind == kind)
    )


async def get_many(
    session: AsyncSession, company_ids: Sequence[int], kind: str
) -> Sequence[StoredSecret]:
    """One kind of secret of several companies, in one query (list pages)."""
    if not company_ids:
        return []
    rows = await session.scalars(
        select(StoredSecret).where(
            StoredSecret.company_id.in_(list(company_ids)), StoredSecret.kind == kind
        )
    )
    return rows.all()


async def delete_for_company(session: AsyncSession, company_id: int) -> int:
    """Deletes every secret of a company; returns how many rows went."""
    result = await session.execute(
        delete(StoredSecret).where(StoredSecret.company_id == company_id)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_kind(session: AsyncSession, company_id: int, kind: str) -> None:
    """Deletes one secret of a company."""
    await session.execute(
        delete(StoredSecret).where(StoredSecret.company_id == company_id, StoredSecret.kind == kind)
    )


async def key_ids_in_use(session: AsyncSession) -> list[str]:
    """Ids of every key that still encrypts at least one stored secret."""
    return list(await session.scalars(select(StoredSecret.key_id).distinct()))


async def not_under_key(session: AsyncSession, key_id: str, limit: int) -> Sequence[StoredSecret]:
    """A batch of secrets encrypted under another key than `key_id` (for rotation)."""
    rows = await session.scalars(
        select(StoredSecret)
        .where(StoredSecret.key_id != key_id)
        .order_by(StoredSecret.id)
        .limit(limit)
    )
    return rows.all()
