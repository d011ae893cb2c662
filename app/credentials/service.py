"""Storing, reading, destroying and re-keying installation secrets."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.database import unit_of_work
from app.core.errors import ConfigurationError
from app.credentials import repository
from app.credentials.crypto import Keyring, Sealed
from app.credentials.models import StoredSecret


async def put_secret(
    session: AsyncSession, keyring: Keyring, company_id: int, kind: str, value: str
) -> None:
    """Stores (or replaces) a secret, encrypted under the primary key."""
    sealed = keyring.seal(value, company_id=company_id, kind=kind)
    row = await repository.get(session, company_id, kind)
    if row is None:
        row = StoredSecret(company_id=company_id, kind=kind)
        row.key_id, row.nonce, row.ciphertext = sealed.key_id, sealed.nonce, sealed.ciphertext
        try:
            async with session.begin_nested():
                session.add(row)
                await session.flush()
            return
        except IntegrityError:  # a concurrent request stored it first: replace its value
            row = await repository.get(session, company_id, kind)
            assert row is not None
    row.key_id, row.nonce, row.ciphertext = sealed.key_id, sealed.nonce, sealed.ciphertext
    await session.flush()


async def get_secret(
    session: AsyncSession, keyring: Keyring, company_id: int, kind: str
) -> str | None:
    """Returns a decrypted secret, or None when none is stored."""
    row = await repository.get(session, company_id, kind)
    if row is None:
        return None
    return keyring.open(
        Sealed(row.key_id, row.nonce, row.ciphertext), company_id=company_id, kind=kind
    )


async def get_secrets(
    session: AsyncSession, keyring: Keyring, company_ids: list[int], kind: str
) -> dict[int, str]:
    """One kind of secret of several companies, decrypted, by company (absent when none)."""
    return {
        row.company_id: keyring.open(
            Sealed(row.key_id, row.nonce, row.ciphertext), company_id=row.company_id, kind=kind
        )
        for row in await repository.get_many(session, company_ids, kind)
    }


async def has_secret(session: AsyncSession, company_id: int, kind: str) -> bool:
    """Whether a secret is stored, without decrypting it."""
    return await repository.get(session, company_id, kind) is not None


async def destroy_secrets(session: AsyncSession, company_id: int) -> int:
    """Deletes every ciphertext of a company (uninstall)."""
    return await repository.delete_for_company(session, company_id)


async def missing_keys(session: AsyncSession, keyring: Keyring) -> list[str]:
    """Key ids that stored secrets need but the keyring lacks."""
    return sorted(set(await repository.key_ids_in_use(session)) - set(keyring.key_ids))


async def check_keys(session: AsyncSession, keyring: Keyring) -> None:
    """Refuses to run when a stored secret's key is missing, naming the key ids."""
    missing = await missing_keys(session, keyring)
    if missing:
        raise ConfigurationError(
            "CONNECTOR_ENCRYPTION_KEYS: stored secrets use key id(s) "
            f"{', '.join(missing)} which are not configured; add them back (after the primary)"
        )


async def rotate(
    factory: async_sessionmaker[AsyncSession], keyring: Keyring, *, batch_size: int = 200
) -> int:
    """Re-encrypts every secret under the primary key, one committed batch at a time."""
    rotated = 0
    while True:
        async with unit_of_work(factory) as session:
            batch = await repository.not_under_key(session, keyring.primary_id, batch_size)
            for row in batch:
                plain = keyring.open(
                    Sealed(row.key_id, row.nonce, row.ciphertext),
                    company_id=row.company_id,
                    kind=row.kind,
                )
                sealed = keyring.seal(plain, company_id=row.company_id, kind=row.kind)
                row.key_id, row.nonce, row.ciphertext = (
                    sealed.key_id,
                    sealed.nonce,
                    sealed.ciphertext,
                )
        rotated += len(batch)
        if len(batch) < batch_size:
            return rotated


async def delete_secret(session: AsyncSession, company_id: int, kind: str) -> None:
    """Destroys one secret of a company (its ciphertext is deleted)."""
    await repository.delete_kind(session, company_id, kind)
