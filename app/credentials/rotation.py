"""`connector keys rotate`: re-encrypt every stored secret under the primary key."""

from __future__ import annotations

import asyncio

from app.core.database import create_engine, make_sessionmaker, unit_of_work
from app.core.migrations import upgrade_to_head
from app.core.settings import Settings
from app.credentials import repository, service
from app.credentials.setup import build_keyring


async def rotate_all(settings: Settings) -> tuple[int, list[str]]:
    """Rotates; returns how many secrets moved and which configured keys are now unused."""
    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    keyring = build_keyring(settings)
    engine = create_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with unit_of_work(sessions) as session:
            await service.check_keys(session, keyring)
        count = await service.rotate(sessions, keyring)
        async with unit_of_work(sessions) as session:
            used = set(await repository.key_ids_in_use(session))
        unused = [key for key in keyring.key_ids if key not in used and key != keyring.primary_id]
        return count, unused
    finally:
        await engine.dispose()
