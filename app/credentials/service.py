"""Storing, reading and destroying installation secrets, each company under its own data key."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.credentials import data_keys, key_checks, repository
from app.credentials.crypto import Keyring


async def put_secret(
    session: AsyncSession, keyring: Keyring, company_id: int, kind: str, value: str
) -> None:
    """Stores (or replaces) a secret, sealed under the company's data key."""
    data_key = await data_keys.for_writing(session, keyring, company_id)
    nonce, ciphertext = data_key.seal(value, kind=kind)
    await repository.upsert(session, company_id, kind, data_key.row_id, nonce, ciphertext)


async def get_secret(
    session: AsyncSession, keyring: Keyring, company_id: int, kind: str
) -> str | None:
    """Returns a decrypted secret, or None when none is stored."""
    record = await repository.get(session, company_id, kind)
    return None if record is None else data_keys.open_secret(keyring, record)


async def get_secrets(
    session: AsyncSession, keyring: Keyring, company_ids: list[int], kind: str
) -> dict[int, str]:
    """One kind of secret of several companies, decrypted, by company (absent when none)."""
    return {
        record.company_id: data_keys.open_secret(keyring, record)
        for record in await repository.get_many(session, company_ids, kind)
    }


async def has_secret(session: AsyncSession, company_id: int, kind: str) -> bool:
    """Whether a secret is stored, without decrypting it."""
    return await repository.exists(session, company_id, kind)


async def delete_secret(
    session: AsyncSession, keyring: Keyring, company_id: int, kind: str
) -> None:
    """Destroys one secret of a company: its row goes and the company's data key is replaced.

    The company's other secrets are re-sealed under the new data key; copies of the deleted
    ciphertext (dead tuples, WAL, backups) were sealed under the destroyed one.
    """
    await repository.data_key(session, company_id, lock="replace")  # before any secret row
    await repository.delete_kind(session, company_id, kind)
    await data_keys.replace(session, keyring, company_id)


async def destroy_secrets(session: AsyncSession, company_id: int) -> int:
    """Destroys every secret of a company and its data key (purge); returns secrets deleted."""
    return await data_keys.destroy(session, company_id)


async def check_keys(session: AsyncSession, keyring: Keyring) -> None:
    """Refuses to run when stored data needs a key that is missing or has other bytes."""
    await key_checks.verify_at_start(session, keyring)
