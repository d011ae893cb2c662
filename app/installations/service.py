"""Rules of the installation lifecycle: install, update, uninstall, credentials, destination."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.core.errors import BadRequest, ServiceUnavailable, Unprocessable
from app.core.logging import get_logger
from app.credentials import service as secrets
from app.credentials.models import SecretKind
from app.destinations import InvalidDestinationURL, validate_destination_url
from app.destinations.policy import policy_from_settings
from app.installations import disconnects, repository
from app.installations.destination import destination_url_for, ensure_signing_secret
from app.installations.disconnects import REASON_NOT_CONNECTED as REASON_NOT_CONNECTED
from app.installations.environments import app_credentials as app_credentials
from app.installations.environments import credentials_for as credentials_for
from app.installations.environments import credentials_source as credentials_source
from app.installations.environments import ensure_servable, environment_of, parse_environment
from app.installations.errors import InstallationNotFound, InstallationNotSyncable
from app.installations.models import Installation, InstallationStatus
from app.installations.schedules import parse_schedule
from app.installations.schemas import InstallationPatch
from app.procore import ProcoreAuthError, ProcoreCredentials, ProcoreError
from app.procore.catalog import parse_stream_selection
from app.runs import queue
from app.runs import state as state_repo
from app.runs.queue import RunAlreadyActive
from app.runtime import Runtime

log = get_logger(__name__)


# Why an installation became uninstalled; discovery re-installs only a company that left
# /companies and came back, never one that is still listed but said "not connected".
REASON_CALLBACK = "app uninstalled (callback)"
REASON_LEFT_COMPANIES = "company left /companies"
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
    A disconnected company is made active again (incremental sync, its cursors kept).
    Raises EnvironmentNotServed when the deployment holds no credentials for its environment.
    Returns the installation and whether it was (re)installed by this call.
    """
    inst = await repository.get(session, company_id, for_update=True)
    now = utcnow()
    env = parse_environment(environment or (inst.environment if inst else None))
    env = env or rt.settings.procore_env
    own = bool(client_id and client_secret) or bool(inst is not None and inst.client_id)
    if inst is None or inst.status != InstallationStatus.uninstalled or reactivate:
        ensure_servable(rt, env, own_credentials=own)
    if inst is None:
        inst = await _create(session, rt, company_id, source, env.value, now)
        fresh = inst is not None
        if inst is None:  # another request created it meanwhile: carry on as an update
            inst = await repository.get(session, company_id, for_update=True)
            assert inst is not None
    else:
        fresh = reactivate and inst.status == InstallationStatus.uninstalled
    inst.company_name = company_name or inst.company_name
    inst.environment = env.value
    # Every install event counts as a change, even one that alters nothing: a discovery pass
    # that began before it must not uninstall the company (SPEC section 3).
    inst.updated_at = now
    if inst.status == InstallationStatus.uninstalled and not fresh:
        await session.flush()
        return inst, False
    if reactivate and inst.status == InstallationStatus.disconnected:
        await disconnects.reconnect(session, company_id, trigger="install", now=now)
    if fresh:
        inst.status = InstallationStatus.active
        inst.uninstalled_at = None
        inst.credentials_error = None
        inst.status_reason = None
        inst.absent_listings = 0
        if source == "callback" or inst.source != "callback":
            inst.source = source
    if client_id and client_secret:
        inst.client_id = client_id
        await secrets.put_secret(
            session, rt.keyring, company_id, SecretKind.client_secret, client_secret
        )
        if inst.status == InstallationStatus.credentials_invalid:
            inst.status, inst.credentials_error = InstallationStatus.active, None
        login, api = rt.settings.hosts_for(env)
        await rt.procore.invalidate_token(
            ProcoreCredentials(client_id, client_secret, login_url=login, api_url=api)
        )
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
        await _queue_full_sync(session, inst, now)
    await session.flush()
    return inst, fresh


async def _queue_full_sync(session: AsyncSession, inst: Installation, now: datetime) -> None:
    """Queues the first full sync now, or as soon as the old run (being stopped) has ended."""
    try:
        await queue.enqueue(session, inst.company_id, trigger="install", full_refresh=True)
        inst.pending_full_sync = False
    except RunAlreadyActive:
        # A re-install while the uninstalled run still stops: the scheduler queues it later.
        inst.pending_full_sync = True
        inst.next_run_at = now


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
        inst.probe_at = None
        inst.probe_interval_seconds = None
        inst.absent_listings = 0
        inst.pending_full_sync = False
    # Also when already uninstalled: a run queued in between must not survive.
    await queue.cancel_for_company(session, company_id, reason=f"uninstalled: {reason}")
    await secrets.delete_secret(session, company_id, SecretKind.client_secret)
    await session.flush()
    return inst


async def take_due(session: AsyncSession, now: datetime, limit: int) -> list[Installation]:
    """Installations whose scheduled time has come, locked until the transaction ends.

    A pending first full sync (a re-install that met its old run still stopping) is queued
    here once that run has ended, so the scheduler's own enqueue finds it.
    """
    due = await repository.lock_due(session, now, limit)
    for inst in due:
        if inst.pending_full_sync:
            await _queue_full_sync(session, inst, now)
    return due


PENDING_RETRY_SECONDS = 5


def schedule_next(inst: Installation, now: datetime) -> None:
    """Moves an installation to its next slot after `now` (not after the missed one: no
    catch-up burst). A schedule that no longer parses retries in an hour."""
    if inst.pending_full_sync:
        inst.next_run_at = now + timedelta(seconds=PENDING_RETRY_SECONDS)
        return
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
        if inst.pending_full_sync and inst.status == InstallationStatus.active:
            await _queue_full_sync(session, inst, utcnow())


async def mark_disconnected(
    session: AsyncSession, rt: Runtime, company_id: int, detail: str
) -> Installation | None:
    """A sync met 403 "App is not connected to this company": disconnected, not uninstalled."""
    return await disconnects.mark_disconnected(
        session,
        company_id,
        detail=detail,
        discovery_interval_seconds=rt.settings.discovery_interval_seconds,
    )


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
    if inst.status == InstallationStatus.disconnected:
        raise InstallationNotSyncable(
            f"company {inst.company_id} has disconnected the app in Procore; it is probed and "
            "synced again on its own once it is reconnected"
        )
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
    login, api = rt.settings.hosts_for(environment_of(inst))
    creds = ProcoreCredentials(client_id, client_secret, login_url=login, api_url=api)
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
