"""Helpers of the credentials tests: keyrings, installations with secrets, raw rows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.database import unit_of_work
from app.core.errors import DecryptionError
from app.core.settings import parse_encryption_keys
from app.credentials import service as secrets
from app.credentials.crypto import DataKeyCipher, Keyring, Sealed, generate_key
from app.credentials.models import DataKey, SecretKind, StoredSecret
from app.installations.models import Installation

OLD = generate_key("old")
NEW = generate_key("new")
Sessions = async_sessionmaker[AsyncSession]


def keyring(*entries: str) -> Keyring:
    """A keyring of `key_id:key` entries, primary first."""
    return Keyring(parse_encryption_keys(",".join(entries)))


def same_id_other_bytes(entry: str) -> str:
    """The key id of `entry` with fresh random bytes (a mistyped or wrong secret)."""
    key_id = entry.split(":")[0]
    return generate_key(key_id)


async def add_installations(sessions: Sessions, company_ids: Iterable[int]) -> None:
    """Installation rows (what every secret belongs to)."""
    async with unit_of_work(sessions) as session:
        for company_id in company_ids:
            session.add(Installation(company_id=company_id, schedule="every 1h", streams="all"))


async def store(
    sessions: Sessions,
    ring: Keyring,
    company_ids: Iterable[int],
    value: str = "s3cret",
    kind: str = SecretKind.client_secret,
) -> None:
    """Installs companies and stores one secret each through the service (data-key format)."""
    ids = list(company_ids)
    await add_installations(sessions, ids)
    async with unit_of_work(sessions) as session:
        for company_id in ids:
            await secrets.put_secret(session, ring, company_id, kind, f"{value}-{company_id}")


async def store_old_format(
    sessions: Sessions,
    ring: Keyring,
    company_ids: Iterable[int],
    value: str = "s3cret",
    kind: str = SecretKind.client_secret,
    *,
    new_companies: bool = True,
) -> None:
    """Secrets as a database from before data keys holds them: sealed by the service key."""
    ids = list(company_ids)
    if new_companies:
        await add_installations(sessions, ids)
    async with unit_of_work(sessions) as session:
        for company_id in ids:
            sealed = ring.seal(f"{value}-{company_id}", company_id=company_id, kind=kind)
            session.add(
                StoredSecret(
                    company_id=company_id,
                    kind=kind,
                    key_id=sealed.key_id,
                    nonce=sealed.nonce,
                    ciphertext=sealed.ciphertext,
                )
            )


async def read(sessions: Sessions, ring: Keyring, company_id: int, kind: str) -> str | None:
    """A secret as the service reads it."""
    async with unit_of_work(sessions) as session:
        return await secrets.get_secret(session, ring, company_id, kind)


async def data_key_rows(sessions: Sessions) -> dict[int, tuple[int, str, bytes, bytes]]:
    """company_id -> (row id, wrapping key id, nonce, wrapped key) of every data key."""
    async with unit_of_work(sessions) as session:
        rows = await session.execute(
            select(
                DataKey.company_id, DataKey.id, DataKey.key_id, DataKey.nonce, DataKey.wrapped_key
            )
        )
        return {row[0]: (row[1], row[2], bytes(row[3]), bytes(row[4])) for row in rows}


async def secret_rows(sessions: Sessions) -> list[dict[str, Any]]:
    """Every stored_secrets row as stored (ciphertexts included)."""
    async with unit_of_work(sessions) as session:
        rows = await session.execute(
            select(
                StoredSecret.company_id,
                StoredSecret.kind,
                StoredSecret.key_id,
                StoredSecret.data_key_id,
                StoredSecret.nonce,
                StoredSecret.ciphertext,
            ).order_by(StoredSecret.company_id, StoredSecret.kind)
        )
        return [dict(row._mapping) for row in rows]


def opens_with(
    ring: Keyring, row: dict[str, Any], data_keys: dict[int, tuple[int, str, bytes, bytes]]
) -> bool:
    """Whether a stored_secrets row (say, from a backup) opens with the keyring and any of
    `data_keys` (company_id -> (id, key id, nonce, wrapped key), as data_key_rows returns)."""
    company_id, kind = row["company_id"], row["kind"]
    if row["key_id"] is not None:
        try:
            ring.open(
                Sealed(row["key_id"], row["nonce"], row["ciphertext"]),
                company_id=company_id,
                kind=kind,
            )
            return True
        except DecryptionError:
            pass
    for owner, (row_id, key_id, nonce, wrapped) in data_keys.items():
        try:
            key = ring.unwrap_data_key(Sealed(key_id, nonce, wrapped), company_id=owner)
            DataKeyCipher(row_id, company_id, key).open(row["nonce"], row["ciphertext"], kind=kind)
            return True
        except DecryptionError:
            continue
    return False


async def wait_until_blocked(sessions: Sessions, task: asyncio.Task[Any]) -> None:
    """Returns once some PostgreSQL backend of this database waits on a lock (the task's)."""
    while True:
        async with unit_of_work(sessions) as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        assert not task.done(), task  # it finished (or failed) without waiting
        await asyncio.sleep(0.02)
