"""An installation's destination: its URL (stored encrypted) and its HTTP signing secret."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.credentials import service as secrets
from app.credentials.models import SecretKind
from app.destinations.signing import generate_signing_secret
from app.installations import repository
from app.installations.errors import InstallationNotFound, NotAnHTTPDestination
from app.installations.models import Installation
from app.runtime import Runtime


async def destination_url_for(session: AsyncSession, rt: Runtime, inst: Installation) -> str:
    """The installation's destination URL (decrypted; never show it unredacted)."""
    url = await secrets.get_secret(session, rt.keyring, inst.company_id, SecretKind.destination_url)
    return url or rt.settings.destination_url.get_secret_value()


async def signing_secret_for(session: AsyncSession, rt: Runtime, company_id: int) -> str | None:
    """The signing secret of the installation's HTTP destination, if it has one."""
    return await secrets.get_secret(
        session, rt.keyring, company_id, SecretKind.destination_signing_secret
    )


def is_http_destination(url: str) -> bool:
    """True for destinations that receive signed HTTP pushes."""
    return url.lower().startswith(("https://", "http://"))


async def ensure_signing_secret(
    session: AsyncSession, rt: Runtime, company_id: int, url: str
) -> bool:
    """Gives an HTTP destination its per-installation signing secret; True if one was made."""
    if not is_http_destination(url):
        return False
    kind = SecretKind.destination_signing_secret
    if await secrets.has_secret(session, company_id, kind):
        return False
    await secrets.put_secret(session, rt.keyring, company_id, kind, generate_signing_secret())
    return True


async def rotate_signing_secret(session: AsyncSession, rt: Runtime, company_id: int) -> str:
    """A new signing secret for the installation's HTTP destination, returned once."""
    inst = await repository.get(session, company_id)
    if inst is None:
        raise InstallationNotFound(f"no installation for company {company_id}")
    url = await destination_url_for(session, rt, inst)
    if not is_http_destination(url):
        raise NotAnHTTPDestination(f"company {company_id} does not push to an HTTP destination")
    secret = generate_signing_secret()
    kind = SecretKind.destination_signing_secret
    await secrets.put_secret(session, rt.keyring, company_id, kind, secret)
    return secret
