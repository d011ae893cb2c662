"""`connector keys rotate`: data keys re-wrapped, old-format secrets moved under data keys.

Both steps are conditional updates of the row as read: a secret or data key that a live
service changed, replaced or destroyed meanwhile is left as that writer left it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.database import create_engine, make_sessionmaker, unit_of_work
from app.core.migrations import upgrade_to_head
from app.core.settings import Settings
from app.credentials import data_keys, key_checks, repository
from app.credentials.crypto import Keyring
from app.credentials.repository import SecretRecord
from app.credentials.setup import build_keyring

# Called with the step (`data_keys` or `old_format`) after a batch is read, before it is written.
BeforeWrite = Callable[[str], Awaitable[None]]


@dataclass
class RotationReport:
    """What a rotation changed, and which configured keys nothing needs any more."""

    primary_id: str
    rewrapped: int = 0
    resealed: int = 0
    skipped: int = 0
    unused: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as printed by the CLI (key ids only, never key bytes)."""
        lines = [
            f"re-wrapped {self.rewrapped} data key(s) under the primary key {self.primary_id}",
            f"moved {self.resealed} secret(s) of the old format under their company's data key",
        ]
        if self.skipped:
            lines.append(
                f"{self.skipped} value(s) changed by the service meanwhile were left as written"
            )
        if self.unused:
            lines.append(f"keys no longer referenced (safe to remove): {', '.join(self.unused)}")
        return lines


async def _rewrap_data_keys(
    factory: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    report: RotationReport,
    batch_size: int,
    before_write: BeforeWrite | None,
) -> None:
    after = 0
    while True:
        async with unit_of_work(factory) as session:
            batch = await repository.data_keys_to_rewrap(
                session, keyring.primary_id, after, batch_size
            )
        if before_write is not None:
            await before_write("data_keys")
        rewrapped = {
            record.id: keyring.wrap_data_key(
                keyring.unwrap_data_key(record.wrapped, company_id=record.company_id),
                company_id=record.company_id,
            )
            for record in batch
        }
        # The whole batch in one transaction, but only the keys nobody holds: rotation never
        # waits while holding locks. A held key is retried alone once its holder is done.
        async with unit_of_work(factory) as session:
            free = await repository.lock_free_data_keys(session, list(rewrapped))
            now = [(record, rewrapped[record.id]) for record in batch if record.id in free]
            changed = await repository.rewrap_if_unchanged(session, now)
        report.rewrapped += changed
        report.skipped += len(now) - changed
        for record in (record for record in batch if record.id not in free):
            async with unit_of_work(factory) as session:
                changed = await repository.rewrap_if_unchanged(
                    session, [(record, rewrapped[record.id])]
                )
            report.rewrapped += changed
            report.skipped += 1 - changed
        if len(batch) < batch_size:
            return
        after = batch[-1].id


async def _reseal_old_format(
    factory: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    report: RotationReport,
    batch_size: int,
    before_write: BeforeWrite | None,
) -> None:
    after = 0
    while True:
        async with unit_of_work(factory) as session:
            batch = await repository.old_format_after(session, after, batch_size)
        if before_write is not None:
            await before_write("old_format")
        by_company: dict[int, list[SecretRecord]] = defaultdict(list)
        for record in batch:
            by_company[record.company_id].append(record)
        for company_id, records in by_company.items():
            values = [data_keys.open_secret(keyring, record) for record in records]
            async with unit_of_work(factory) as session:
                data_key = await data_keys.for_writing(session, keyring, company_id)
                for record, value in zip(records, values, strict=True):
                    nonce, ciphertext = data_key.seal(value, kind=record.kind)
                    changed = await repository.reseal_if_unchanged(
                        session, record, data_key.row_id, nonce, ciphertext
                    )
                    report.resealed += changed
                    report.skipped += not changed
        if len(batch) < batch_size:
            return
        after = batch[-1].id


async def rotate(
    factory: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    *,
    batch_size: int = 200,
    before_write: BeforeWrite | None = None,
) -> RotationReport:
    """Re-wraps every data key under the primary key and moves old-format secrets under data
    keys; `before_write` runs between reading and writing each batch (tests interleave
    concurrent changes there).

    Batches are read without locks. Data keys are re-wrapped a batch per transaction, locking
    only keys no one holds; old-format secrets are moved one company per transaction. So
    rotation never waits for a lock while holding another, and cannot deadlock with the
    service.
    """
    report = RotationReport(keyring.primary_id)
    await _rewrap_data_keys(factory, keyring, report, batch_size, before_write)
    await _reseal_old_format(factory, keyring, report, batch_size, before_write)
    async with unit_of_work(factory) as session:
        used = set(await repository.key_ids_in_use(session))
    report.unused = [
        key for key in keyring.key_ids if key not in used and key != keyring.primary_id
    ]
    return report


async def rotate_all(settings: Settings) -> RotationReport:
    """Migrates, checks the keys, rotates; returns the report."""
    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    keyring = build_keyring(settings)
    engine = create_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with unit_of_work(sessions) as session:
            await key_checks.verify_at_start(session, keyring)
        return await rotate(sessions, keyring)
    finally:
        await engine.dispose()
