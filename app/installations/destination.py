"""An installation's destination: its URL (stored encrypted), the destinations it has written
to (so a purge finds them all) and its HTTP signing secrets (the current one and, during a
rotation's grace period, the previous one), all stored encrypted like the URL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import json_codec
from app.credentials import service as secrets
from app.credentials.crypto import Keyring
from app.credentials.models import SecretKind
from app.destinations.signing import decode_secret, generate_signing_secret
from app.installations import repository
from app.installations.errors import (
    InstallationNotFound,
    InvalidSigningSecret,
    NotAnHTTPDestination,
)
from app.installations.models import Installation
from app.runtime import Runtime

DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=30)


class PreviousSecret(BaseModel):
    """A replaced signing secret that still signs until `valid_until`."""

    secret: str
    valid_until: datetime


async def remember_destination(
    session: AsyncSession, keyring: Keyring, company_id: int, url: str
) -> None:
    """Adds the URL to the destinations the installation has written to (once)."""
    kind = SecretKind.destination_history
    stored = await secrets.get_secret(session, keyring, company_id, kind)
    written = _urls(stored) if stored is not None else []
    if url in written:
        return
    await secrets.put_secret(session, keyring, company_id, kind, json_codec.dumps([*written, url]))


def _urls(stored: str) -> list[str]:
    urls = json_codec.loads(stored)
    return [url for url in urls if isinstance(url, str)] if isinstance(urls, list) else []


async def destinations_written(
    session: AsyncSession, keyring: Keyring, company_id: int
) -> list[str]:
    """The destinations a purge must reach: every one a run of the installation wrote to.

    An installation from before this list existed falls back to its stored destination URL;
    never to the service's default, which may hold other installations' data and none of this
    one's (after a purge the list is gone with the other secrets, and so is the URL).
    """
    stored = await secrets.get_secret(session, keyring, company_id, SecretKind.destination_history)
    if stored is not None:
        return _urls(stored)
    url = await secrets.get_secret(session, keyring, company_id, SecretKind.destination_url)
    return [url] if url else []


async def signing_secrets(
    session: AsyncSession, keyring: Keyring, company_id: int, *, now: datetime | None = None
) -> tuple[str | None, list[str]]:
    """The current signing secret and those still valid in a rotation's grace period."""
    current = await secrets.get_secret(
        session, keyring, company_id, SecretKind.destination_signing_secret
    )
    previous = await _previous(session, keyring, company_id)
    moment = now or datetime.now(UTC)
    if current is None or previous is None or previous.valid_until <= moment:
        return current, []
    return current, [previous.secret]


async def _previous(
    session: AsyncSession, keyring: Keyring, company_id: int
) -> PreviousSecret | None:
    kind = SecretKind.destination_previous_signing_secret
    stored = await secrets.get_secret(session, keyring, company_id, kind)
    if stored is None:
        return None
    try:
        return PreviousSecret.model_validate_json(stored)
    except ValidationError:
        return None


async def replace_signing_secret(
    session: AsyncSession,
    keyring: Keyring,
    company_id: int,
    *,
    secret: str | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> tuple[str, datetime | None]:
    """Stores a new signing secret (the given one, or a generated one) and keeps the current
    one signing beside it for `grace`; returns the new secret and when the old one stops."""
    new = secret or generate_signing_secret()
    current = await secrets.get_secret(
        session, keyring, company_id, SecretKind.destination_signing_secret
    )
    kind = SecretKind.destination_previous_signing_secret
    valid_until = None
    if current is not None and current != new and grace > timedelta(0):
        valid_until = datetime.now(UTC) + min(grace, MAX_GRACE)
        kept = PreviousSecret(secret=current, valid_until=valid_until)
        await secrets.put_secret(session, keyring, company_id, kind, kept.model_dump_json())
    else:
        await secrets.delete_secret(session, keyring, company_id, kind)
    await secrets.put_secret(
        session, keyring, company_id, SecretKind.destination_signing_secret, new
    )
    return new, valid_until


async def forget_destination(
    session: AsyncSession, keyring: Keyring, company_id: int, url: str
) -> None:
    """Removes a purged destination from the list, so a repeated purge does not go back."""
    remaining = [u for u in await destinations_written(session, keyring, company_id) if u != url]
    kind = SecretKind.destination_history
    await secrets.put_secret(session, keyring, company_id, kind, json_codec.dumps(remaining))


async def destination_url_for(session: AsyncSession, rt: Runtime, inst: Installation) -> str:
    """The installation's destination URL (decrypted; never show it unredacted)."""
    url = await secrets.get_secret(session, rt.keyring, inst.company_id, SecretKind.destination_url)
    return url or rt.settings.destination_url.get_secret_value()


def is_http_destination(url: str) -> bool:
    """True for destinations that receive signed HTTP pushes."""
    return url.lower().startswith(("https://", "http://"))


async def ensure_signing_secret(
    session: AsyncSession, rt: Runtime, company_id: int, url: str
) -> str | None:
    """Gives an HTTP destination its per-installation signing secret; returns it if new."""
    if not is_http_destination(url):
        return None
    kind = SecretKind.destination_signing_secret
    if await secrets.has_secret(session, company_id, kind):
        return None
    secret = generate_signing_secret()
    await secrets.put_secret(session, rt.keyring, company_id, kind, secret)
    return secret


async def rotate_signing_secret(
    session: AsyncSession,
    rt: Runtime,
    company_id: int,
    *,
    secret: str | None = None,
    grace: timedelta | None = None,
) -> tuple[str, datetime | None]:
    """A new (or the operator's known) signing secret for the installation's HTTP destination;
    the previous one keeps signing beside it for `grace`. Returns it and when the old stops."""
    if secret is not None:
        try:
            key_length = len(decode_secret(secret))
        except ValueError as exc:
            raise InvalidSigningSecret(f"signing_secret: {exc}") from None
        if not 24 <= key_length <= 64:
            raise InvalidSigningSecret(
                f"signing_secret: must decode to 24 to 64 bytes, got {key_length}"
            )
    inst = await repository.get(session, company_id)
    if inst is None:
        raise InstallationNotFound(f"no installation for company {company_id}")
    url = await destination_url_for(session, rt, inst)
    if not is_http_destination(url):
        raise NotAnHTTPDestination(f"company {company_id} does not push to an HTTP destination")
    return await replace_signing_secret(
        session,
        rt.keyring,
        company_id,
        secret=secret,
        grace=DEFAULT_GRACE if grace is None else grace,
    )
