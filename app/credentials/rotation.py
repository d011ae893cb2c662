"""`connector keys rotate`: re-encrypt every stored secret under the primary key."""

from __future__ import annotations

import asyncio

from app.core.database import unit_of_work
from app.core.migrations import upgrade_to_head
from app.core.runtime import build_runtime
from app.core.settings import Settings
from app.credentials import repository, service


async def rotate_all(settings: Settings) -> tuple[int, list[str]]:
    """Rotates; returns how many secrets moved and which configured keys are now unused."""
    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    rt = build_runtime(settings)
    try:
        async with unit_of_work(rt.sessions) as session:
            await service.check_keys(session, rt.keyring)
        count = await service.rotate(rt.sessions, rt.keyring)
        async with unit_of_work(rt.sessions) as session:
            used = set(await repository.key_ids_in_use(session))
        unused = [
            key for key in rt.keyring.key_ids if key not in used and key != rt.keyring.primary_id
        ]
        return count, unused
    finally:
        await rt.aclose()
