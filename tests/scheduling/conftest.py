"""A migrated service database and runtime, without the HTTP service or the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.core.migrations import upgrade_to_head
from app.core.runtime import Runtime, build_runtime
from tests.factories import make_settings


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[Runtime]:
    """The runtime of one process on a fresh, migrated database (short leases for tests)."""
    await asyncio.to_thread(upgrade_to_head, database_url)
    runtime = build_runtime(make_settings(database_url=database_url, lease_seconds=30))
    try:
        yield runtime
    finally:
        await runtime.aclose()
