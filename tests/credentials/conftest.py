"""A migrated service database with a session factory, for the credentials tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.database import create_engine, make_sessionmaker
from app.core.migrations import upgrade_to_head


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a fresh database migrated to head."""
    await asyncio.to_thread(upgrade_to_head, database_url)
    engine = create_engine(database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
