"""Rules of the installation lifecycle: install, update, uninstall, credentials, destination."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.core.errors import (
    BadRequest,
    ConfigurationError,
    Conflict,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
)
from app.core.runtime import Runtime
from app.credentials import service as secrets
from app.credentials.crypto import Keyring
from app.credentials.models import SecretKind
from app.destinations import InvalidDestinationURL, validate_destination_url
from app.destinations.signing import generate_signing_secret
from app.installations import repository
from app.installations.models import Installation, InstallationStatus
from app.installations.schemas import InstallationPatch
from app.procore import ProcoreAuthError, ProcoreCredentials, ProcoreError
from app.scheduling import queue
from app.scheduling.schedules import parse_schedule
from app.sync import state as state_repo
from app.sync.catalog import parse_stream_selection

# Why an installation became uninstalled; discovery re-installs only a company that left
# /companies and came back, never one that is still listed but said "not connected".
REASON_CALLBACK = "app uninstalled (callback)"
REASON_LEFT_COMPANIES = "company left /companies"
REASON_NOT_CONNECTED = "app not connected"
REASON_ADMIN = "uninstalled by an admin"


async def install(
    session: AsyncSession,
    rt: Runtime,
    *,
    company_id: int,
    company_name: str | None,
    environment: str | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    source: str = "callback",
    reactivate: bool = True,
) -> tuple[Installation, bool]:
    """Creates or refreshes an installation; queues a first full sync when it is new or back.

    With `reactivate=False` (an `installation.updated` event) an uninstalled company only has
    its details refreshed: coming back takes an `installation.created` or discovery.
    Returns the installation and whether it was (re)installed by this call.
    """
    inst = await repository.get(session, company_id, for_update=True)
    now = utcnow()
    if inst is None:
        inst = await _create(session, rt, company_id, source, environment or "production", now)
        fresh = inst is not None
        if inst is None:  # another request created it meanwhile: carry on as an update
            inst = await repository.get(session, company_id, for_update=True)
            assert inst is not None
    else:
        fresh = reactivate and inst.status == InstallationStatus.uninstalled
    inst.company_name = company_name or inst.company_name
    inst.environment = environment or inst.environment
    if inst.status == InstallationStatus.uninstalled and not fresh:
        await session.flush()
        return inst, False
    if fresh:
        inst.status = InstallationStatus.active
        inst.uninstalled_at = None
        inst.credentials_error = None
        inst.status_reason = None
        if source == "callback" or inst.source != "callback":
            inst.source = source
    if client_id and client_secret:
        inst.client_id = client_id
        await secrets.put_secret(
            session, rt.keyring, company_id, SecretKind.client_secret, client_secret
        )
        if inst.status == InstallationStatus.credentials_invalid:
            inst.status, inst.credentials_error = InstallationStatus.active, None
        await rt.procore.invalidate_token(ProcoreCredentials(client_id, client_secret))
    if fresh:
        # A new installation (or one whose data was purged) starts at the default destination.
        if not await secrets.has_secret(session, company_id, SecretKind.destination_url):
            await secrets.put_secret(
                session,
                rt.keyring,
                company_id,
                SecretKind.destination_url,
                rt.settings.destination_url.get_secret_value(),
            )
        await ensure_signing_secret(
            session, rt, company_id, await destination_url_for(session, rt, inst)
        )
        schedule = parse_schedule(inst.schedule)
        inst.next_run_at = schedule.next_run(now, company_id)
        await queue.enqueue(session, company_id, trigger="install", full_refresh=True)
    await session.flush()
    return inst, fresh


async def _create(
    session: AsyncSession,
    rt: Runtime,
    company_id: int,
    source: str,
    environment: str,
    now: datetime,
) -> Installation | None:
    """Inserts a new installation with the defaults; None if a concurrent request won the race."""
    inst = Installation(
        company_id=company_id,
        schedule=rt.settings.schedule,
        streams=rt.settings.streams,
        missing_projects=[],
        health={},
        paused=False,
        source=source,
        environment=environment,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(inst)
            await session.flush()
    except IntegrityError:
        return None
    return inst


async def uninstall(
    session: AsyncSession, keyring: Keyring, company_id: int, *, reason: str
) -> Installation | None:
    """Stops the schedule, cancels runs and destroys the stored Procore credentials (the
    company's data key is replaced too, so no earlier copy of them can be decrypted).

    The data already synced stays in the destination (and so does the destination URL, so a
    purge or a re-install can still reach it).
    """
    inst = await repository.get(session, company_id, for_update=True)
    if inst is None:
        return None
    if inst.status != InstallationStatus.uninstalled:
        inst.status = InstallationStatus.uninstalled
        inst.status_reason = reason[:255]
        inst.uninstalled_at = utcnow()
        inst.next_run_at = None
        inst.client_id = None
        inst.credentials_error = None
    # Also when already uninstalled: a run queued in between must not survive.
    await queue.cancel_for_company(session, company_id, reason=f"uninstalled: {reason}")
    await secrets.delete_secret(session, keyring, company_id, SecretKind.client_secret)
    await session.flush()
    return inst


async def get_or_404(session: AsyncSession, company_id: int) -> Installation:
    """One installation, or NotFound."""
    inst = await repository.get(session, company_id)
    if inst is None:
        raise NotFound(f"no installation for company {company_id}")
    return inst


async def credentials_for(
    session: AsyncSession, rt: Runtime, inst: Installation
) -> ProcoreCredentials:
    """The DMSA credentials to call Procore with for this installation."""
    if inst.client_id:
        secret = await secrets.get_secret(
            session, rt.keyring, inst.company_id, SecretKind.client_secret
        )
        if secret:
            return ProcoreCredentials(inst.client_id, secret)
    return app_credentials(rt)


def app_credentials(rt: Runtime) -> ProcoreCredentials:
    """The app's own DMSA credentials (discovery, and installations whose callback had none)."""
    settings = rt.settings
    if not settings.client_id or settings.client_secret is None:
        raise ConfigurationError(
            "no DMSA credentials: set CONNECTOR_CLIENT_ID and CONNECTOR_CLIENT_SECRET, "
            "or send client_id/client_secret in the install callback"
        )
    return ProcoreCredentials(settings.client_id, settings.client_secret.get_secret_value())


def credentials_source(inst: Installation, rt: Runtime) -> Literal["installation", "app", "none"]:
    """Where this installation's credentials come from: installation, app or none."""
    if inst.status == InstallationStatus.uninstalled:
        return "none"  # destroyed at uninstall; nothing is called for it any more
    if inst.client_id:
        return "installation"
    return "app" if rt.settings.client_id and rt.settings.client_secret else "none"


async def destination_url_for(session: AsyncSession, rt: Runtime, inst: Installation) -> str:
    """The installation's destination URL (decrypted; never show it unredacted)."""
    url = await secrets.get_secret(session, rt.keyring, inst.company_id, SecretKind.destination_url)
    return url or rt.settings.destination_url.get_secret_value()


async def apply_patch(
    session: AsyncSession, rt: Runtime, company_id: int, patch: InstallationPatch
) -> Installation:
    """Changes schedule, streams, destination or paused; validates each value first."""
    inst = await repository.get(session, company_id, for_update=True)
    if inst is None:
        raise NotFound(f"no installation for company {company_id}")
    if patch.schedule is not None:
        try:
            schedule = parse_schedule(patch.schedule)
        except ValueError as exc:
            raise BadRequest(f"schedule: {exc}", details=[{"field": "schedule"}]) from None
        inst.schedule = schedule.text
        inst.next_run_at = schedule.next_run(utcnow(), company_id)
    if patch.streams is not None:
        raw = ",".join(patch.streams) if isinstance(patch.streams, list) else patch.streams
        if not raw.strip():
            raise BadRequest(
                "streams: give `all` or at least one stream name", details=[{"field": "streams"}]
            )
        try:
            names = parse_stream_selection(raw)
        except ValueError as exc:
            raise BadRequest(f"streams: {exc}", details=[{"field": "streams"}]) from None
        inst.streams = "all" if raw.strip() == "all" else ",".join(names)
    if patch.destination_url is not None:
        try:
            url = validate_destination_url(patch.destination_url.get_secret_value())
        except InvalidDestinationURL as exc:
            message = str(exc)
            if not message.startswith("destination_url"):
                message = f"destination_url: {message}"
            raise BadRequest(message, details=[{"field": "destination_url"}]) from None
        if url != await destination_url_for(session, rt, inst):
            # A new destination gets everything, not just what changes from now on.
            await state_repo.reset(session, company_id)
        await secrets.put_secret(session, rt.keyring, company_id, SecretKind.destination_url, url)
        await ensure_signing_secret(session, rt, company_id, url)
    if patch.paused is not None:
        inst.paused = patch.paused
        if not patch.paused and inst.next_run_at is None:
            inst.next_run_at = parse_schedule(inst.schedule).next_run(utcnow(), company_id)
    await session.flush()
    return inst


def ensure_syncable(inst: Installation) -> None:
    """Refuses to queue runs for installations that cannot run."""
    if inst.status == InstallationStatus.uninstalled:
        raise Conflict(f"company {inst.company_id} is uninstalled")
    if inst.status == InstallationStatus.credentials_invalid:
        raise Conflict(
            f"company {inst.company_id} has invalid credentials; replace them first "
            f"(PUT /admin/v1/installations/{inst.company_id}/credentials)"
        )


async def replace_credentials(
    session: AsyncSession, rt: Runtime, company_id: int, client_id: str, client_secret: str
) -> Installation:
    """Checks new credentials against Procore's token endpoint, then stores them encrypted."""
    inst = await get_or_404(session, company_id)
    if inst.status == InstallationStatus.uninstalled:
        raise Conflict(
            f"company {company_id} is uninstalled: its credentials were destroyed and are not "
            "stored again until it is installed again"
        )
    old = await credentials_for(session, rt, inst) if inst.client_id else None
    creds = ProcoreCredentials(client_id, client_secret)
    try:
        # A fresh token request, even for a pair cached or rejected before.
        await rt.procore.check_credentials(creds)
    except ProcoreAuthError as exc:
        raise Unprocessable(
            f"Procore rejected the credentials: {exc.message}",
            details=[{"field": "client_secret", "reason": exc.message}],
        ) from None
    except ProcoreError as exc:
        raise ServiceUnavailable(
            f"could not check the credentials with Procore: {exc.message}"
        ) from None
    if old is not None and old != creds:
        await rt.procore.forget_credentials(old)
    inst.client_id = client_id
    await secrets.put_secret(
        session, rt.keyring, company_id, SecretKind.client_secret, client_secret
    )
    if inst.status == InstallationStatus.credentials_invalid:
        inst.status, inst.credentials_error = InstallationStatus.active, None
    await session.flush()
    return inst


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
    inst = await get_or_404(session, company_id)
    url = await destination_url_for(session, rt, inst)
    if not is_http_destination(url):
        raise Conflict(f"company {company_id} does not push to an HTTP destination")
    secret = generate_signing_secret()
    kind = SecretKind.destination_signing_secret
    await secrets.put_secret(session, rt.keyring, company_id, kind, secret)
    return secret
