"""Per-company data keys: created on a company's first secret, replaced or destroyed to shred."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import DecryptionError
from app.core.logging import get_logger
from app.credentials import repository
from app.credentials.crypto import DataKeyCipher, Keyring, Sealed, new_data_key_bytes
from app.credentials.repository import DataKeyRecord, SecretRecord

log = get_logger(__name__)


def unwrap(keyring: Keyring, record: DataKeyRecord) -> DataKeyCipher:
    """Opens a wrapped data key with the service keys."""
    key = keyring.unwrap_data_key(record.wrapped, company_id=record.company_id)
    return DataKeyCipher(record.id, record.company_id, key)


async def for_writing(session: AsyncSession, keyring: Keyring, company_id: int) -> DataKeyCipher:
    """The company's data key, created (random, wrapped by the primary key) if it has none.

    The key stays locked for use until commit, so an uninstall cannot replace it under a
    secret being sealed with it. Locks are taken in one order by every writer: installation,
    data key, secrets.
    """
    record = await repository.data_key(session, company_id, lock="use")
    if record is None:
        await repository.lock_company_row(session, company_id)
        wrapped = keyring.wrap_data_key(new_data_key_bytes(), company_id=company_id)
        await repository.insert_data_key_if_absent(session, company_id, wrapped)
        record = await repository.data_key(session, company_id, lock="use")
        assert record is not None  # inserted here, or by the concurrent writer that won
    return unwrap(keyring, record)


def open_secret(keyring: Keyring, record: SecretRecord) -> str:
    """Decrypts a stored secret, whichever format it is in."""
    if record.data_key is None:
        if record.key_id is None:  # the check constraint rules this out
            raise DecryptionError(f"stored {record.kind} of company {record.company_id} has no key")
        return keyring.open(
            record_as_sealed(record), company_id=record.company_id, kind=record.kind
        )
    key = keyring.unwrap_data_key(record.data_key, company_id=record.company_id)
    assert record.data_key_id is not None
    data_key = DataKeyCipher(record.data_key_id, record.company_id, key)
    return data_key.open(record.nonce, record.ciphertext, kind=record.kind)


def record_as_sealed(record: SecretRecord) -> Sealed:
    """An old-format secret as the keyring opens it."""
    assert record.key_id is not None
    return Sealed(record.key_id, record.nonce, record.ciphertext)


async def replace(session: AsyncSession, keyring: Keyring, company_id: int) -> None:
    """Destroys the company's data key; what is still stored is re-sealed under a fresh one.

    Every earlier ciphertext of the company (dead tuples, WAL, backups, the secret just
    deleted) was sealed under the destroyed key or directly under a service key, so the live
    keys open none of them. A value that no longer opens is dropped, not carried over.
    """
    await repository.data_key(session, company_id, lock="replace")
    kept: list[tuple[str, str]] = []
    for record in await repository.of_company(session, company_id):
        try:
            kept.append((record.kind, open_secret(keyring, record)))
        except DecryptionError as exc:
            log.warning("secret dropped while shredding", company_id=company_id, error=exc.message)
    await repository.delete_for_company(session, company_id)
    await repository.delete_data_key(session, company_id)
    if not kept:
        return
    fresh = await for_writing(session, keyring, company_id)
    for kind, value in kept:
        nonce, ciphertext = fresh.seal(value, kind=kind)
        await repository.upsert(session, company_id, kind, fresh.row_id, nonce, ciphertext)


async def destroy(session: AsyncSession, company_id: int) -> int:
    """Destroys the company's data key and every secret; returns how many secrets went."""
    await repository.data_key(session, company_id, lock="replace")
    deleted = await repository.delete_for_company(session, company_id)
    await repository.delete_data_key(session, company_id)
    return deleted
