"""Rules of the installation lifecycle: install, update, uninstall, credentials, destination."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.core.errors import (
    BadRequest,
    ConfigurationError,
    ServiceUnavailable,
    Unprocessable,
)
from app.core.logging import get_logger
from app.credentials import service as secrets
from app.credentials.models import SecretKind
from app.destinations import InvalidDestinationURL, validate_destination_url
from app.destinations.policy import policy_from_settings
from app.installations import repository
from app.installations.destination import destination_url_for, ensure_signing_secret
from app.installations.errors import InstallationNotFound, InstallationNotSyncable
from app.installations.models import Installation, InstallationStatus
from app.installations.schedules import parse_schedule
from app.installations.schemas import InstallationPatch
from app.procore import ProcoreAuthError, ProcoreCredentials, ProcoreError
from app.procore.catalog import parse_stream_selection
from app.runs import queue
from app.runs import state as state_repo
from app.runtime import Runtime

log = get_logger(__name__)


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


async def uninstall(session: AsyncSession, company_id: int, *, reason: str) -> Installation | None:
    """Stops the schedule, cancels runs and destroys the stored Procore credentials.

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
    await secrets.delete_secret(session, company_id, SecretKind.client_secret)
    await session.flush()
    return inst


async def take_due(session: AsyncSession, now: datetime, limit: int) -> list[Installation]:
    """Installations whose scheduled time has come, locked until the transaction ends."""
    return await repository.lock_due(session, now, limit)


def schedule_next(inst: Installation, now: datetime) -> None:
    """Moves an installation to its next slot after `now` (not after the missed one: no
    catch-up burst). A schedule that no longer parses retries in an hour."""
    try:
        inst.next_run_at = parse_schedule(inst.schedule).next_run(now, inst.company_id)
    except ValueError as exc:
        # Schedules are validated on the way in; a bad one must not stall everybody else.
        log.error(
            "unusable schedule; retrying in an hour", company_id=inst.company_id, error=str(exc)
        )
        inst.next_run_at = now + timedelta(hours=1)


async def get(session: AsyncSession, company_id: int) -> Installation | None:
    """One installation, or None."""
    return await repository.get(session, company_id)


async def require(session: AsyncSession, company_id: int) -> Installation:
    """One installation, or InstallationNotFound."""
    inst = await repository.get(session, company_id)
    if inst is None:
        raise InstallationNotFound(f"no installation for company {company_id}")
    return inst


async def record_run_end(
    session: AsyncSession, company_id: int, run_id: str, health: dict[str, int]
) -> None:
    """Notes an installation's last run and adds its Integration Health counts."""
    inst = await repository.get(session, company_id)
    if inst is not None:
        inst.last_run_id = run_id
        inst.health_add(health)


async def record_missing_projects(
    session: AsyncSession, company_id: int, missing: list[int]
) -> bool:
    """Flags projects that left the permitted list; True when the flagged set changed."""
    inst = await repository.get(session, company_id)
    if inst is None or inst.missing_projects == missing:
        return False
    inst.missing_projects = missing
    return True


async def fence_holds(session: AsyncSession, company_id: int, generation: int) -> bool:
    """Whether a run that started at this destination generation may still save progress.

    Locks the installation row until the caller's transaction ends, so a destination change
    (which locks it too) cannot slip between this check and the checkpoint it guards.
    """
    inst = await repository.get(session, company_id, for_update=True)
    return inst is not None and (inst.destination_generation or 0) == generation


async def mark_credentials_invalid(session: AsyncSession, company_id: int, error: str) -> None:
    """Procore rejected the installation's credentials: no runs until they are replaced."""
    inst = await repository.get(session, company_id)
    if inst is not None and inst.status == InstallationStatus.active:
        inst.status = InstallationStatus.credentials_invalid
        inst.credentials_error = error


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


async def apply_patch(
    session: AsyncSession, rt: Runtime, company_id: int, patch: InstallationPatch
) -> tuple[Installation, str | None]:
    """Changes schedule, streams, destination or paused; validates each value first.

    Returns the installation and, when the change gave an HTTP destination its first signing
    secret, that secret (to be shown once).
    """
    new_secret = None
    inst = await repository.get(session, company_id, for_update=True)
    if inst is None:
        raise InstallationNotFound(f"no installation for company {company_id}")
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
            url = validate_destination_url(
                patch.destination_url.get_secret_value(), policy_from_settings(rt.settings)
            )
        except InvalidDestinationURL as exc:
            message = str(exc)
            if not message.startswith("destination_url"):
                message = f"destination_url: {message}"
            raise BadRequest(message, details=[{"field": "destination_url"}]) from None
        if url != await destination_url_for(session, rt, inst):
            # A new destination gets everything, not just what changes from now on; a run
            # still writing to the old one stops at its next checkpoint (see fence_holds).
            await state_repo.reset(session, company_id)
            inst.destination_generation = (inst.destination_generation or 0) + 1
        await secrets.put_secret(session, rt.keyring, company_id, SecretKind.destination_url, url)
        new_secret = await ensure_signing_secret(session, rt, company_id, url)
    if patch.paused is not None:
        inst.paused = patch.paused
        if not patch.paused and inst.next_run_at is None:
            inst.next_run_at = parse_schedule(inst.schedule).next_run(utcnow(), company_id)
    await session.flush()
    return inst, new_secret


def ensure_syncable(inst: Installation) -> None:
    """Refuses to queue runs for installations that cannot run."""
    if inst.status == InstallationStatus.uninstalled:
        raise InstallationNotSyncable(f"company {inst.company_id} is uninstalled")
    if inst.status == InstallationStatus.credentials_invalid:
        raise InstallationNotSyncable(
            f"company {inst.company_id} has invalid credentials; replace them first "
            f"(PUT /admin/v1/installations/{inst.company_id}/credentials)"
        )


async def replace_credentials(
    session: AsyncSession, rt: Runtime, company_id: int, client_id: str, client_secret: str
) -> Installation:
    """Checks new credentials against Procore's token endpoint, then stores them encrypted."""
    inst = await require(session, company_id)
    if inst.status == InstallationStatus.uninstalled:
        raise InstallationNotSyncable(
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
