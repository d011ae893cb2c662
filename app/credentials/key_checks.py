"""Start-up and readiness checks of the service keys: none missing, none with other bytes."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.database import unit_of_work
from app.core.errors import ConfigurationError, DecryptionError
from app.credentials import data_keys, repository
from app.credentials.crypto import Keyring


def wrong_bytes(key_id: str, why: str) -> ConfigurationError:
    """The one line that stops start-up when a key id is configured with other bytes."""
    return ConfigurationError(
        f"CONNECTOR_ENCRYPTION_KEYS: key id {key_id!r} is configured with other bytes than "
        f"the key stored data was encrypted with ({why}); set the original bytes for that id"
    )


async def missing_keys(session: AsyncSession, keyring: Keyring) -> list[str]:
    """Key ids that stored data keys or secrets need but the keyring lacks."""
    return sorted(set(await repository.key_ids_in_use(session)) - set(keyring.key_ids))


async def _opens_stored_data(session: AsyncSession, keyring: Keyring, key_id: str) -> bool:
    """Tries a key on one data key and one old-format secret sealed under it, if any exist."""
    data_key, secret = await repository.sample_under_key(session, key_id)
    try:
        if data_key is not None:
            data_keys.unwrap(keyring, data_key)
        if secret is not None:
            data_keys.open_secret(keyring, secret)
    except DecryptionError:
        return False
    return True


async def verify_at_start(session: AsyncSession, keyring: Keyring) -> None:
    """Refuses to run (ConfigurationError) when a needed key is missing or has other bytes.

    A key id seen for the first time gets its check value stored, after it has been tried
    on the data already sealed under it (a database from before key checks existed).
    """
    missing = await missing_keys(session, keyring)
    if missing:
        raise ConfigurationError(
            "CONNECTOR_ENCRYPTION_KEYS: stored secrets use key id(s) "
            f"{', '.join(missing)} which are not configured; add them back (after the primary)"
        )
    stored = await repository.key_checks(session)
    for key_id in keyring.key_ids:
        if key_id not in stored:
            if not await _opens_stored_data(session, keyring, key_id):
                raise wrong_bytes(key_id, "it does not open the secrets stored under it")
            await repository.insert_key_check_if_absent(session, keyring.key_check(key_id))
            stored = await repository.key_checks(session)  # a concurrent start may have won
        if not keyring.matches_check(stored[key_id]):
            raise wrong_bytes(key_id, "its stored key-check value does not open")


async def mismatched_keys(session: AsyncSession, keyring: Keyring) -> list[str]:
    """Configured key ids whose stored check value the configured bytes do not open."""
    stored = await repository.key_checks(session)
    return [
        key_id
        for key_id in keyring.key_ids
        if key_id in stored and not keyring.matches_check(stored[key_id])
    ]


async def readiness(factory: async_sessionmaker[AsyncSession], keyring: Keyring) -> str:
    """`ok`, or what is wrong with the encryption keys (for /readyz; never the key bytes)."""
    try:
        keyring.self_test()
    except Exception:
        return "unusable"
    try:
        async with unit_of_work(factory) as session:
            wrong = await mismatched_keys(session, keyring)
            missing = await missing_keys(session, keyring)
    except Exception as exc:
        return f"not checked: {type(exc).__name__}"
    if wrong:
        return f"key id(s) {', '.join(wrong)} do not match their stored key-check value"
    if missing:
        return f"key id(s) {', '.join(missing)} are needed but not configured"
    return "ok"
