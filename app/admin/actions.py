"""The changes an operator can make, each checked against the caller's role and audited.

The REST API and the console both call these functions, so a role is refused the same action
in both, and both leave the same audit entry in the transaction of the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.admin import uninstall as uninstall_flow
from app.admin.auth import Permission, Principal
from app.alerts import service as alerts
from app.audit import service as audit
from app.audit.schemas import Action, Actor
from app.core.database import unit_of_work
from app.core.errors import ConnectorError
from app.destinations import redact_destination_url
from app.installations import discovery, service
from app.installations.destination import destination_url_for, rotate_signing_secret
from app.installations.models import Installation
from app.installations.schemas import InstallationPatch, UninstallAnswer
from app.runs import queue
from app.runs.models import SyncRun
from app.runtime import Runtime


@dataclass(frozen=True)
class Caller:
    """Who asks: the principal (for the role check) and the actor (for the audit trail)."""

    principal: Principal
    actor: Actor


def patch_permission(patch: InstallationPatch) -> Permission:
    """Pausing and resuming is operating; any other change is configuring."""
    fields = patch.model_dump(exclude_unset=True, exclude_none=True)
    return Permission.operate if set(fields) <= {"paused"} else Permission.configure


async def snapshot(session: AsyncSession, rt: Runtime, inst: Installation) -> dict[str, Any]:
    """What the audit trail keeps of an installation before and after a change (redacted)."""
    return {
        "status": inst.status,
        "schedule": inst.schedule,
        "streams": inst.streams,
        "paused": inst.paused,
        "destination": redact_destination_url(await destination_url_for(session, rt, inst)),
        "client_id": inst.client_id,
    }


def _changed(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


async def patch_installation(
    session: AsyncSession, rt: Runtime, caller: Caller, company_id: int, patch: InstallationPatch
) -> tuple[Installation, str | None]:
    """Changes schedule, streams, destination or paused, as the caller's role allows.

    Returns the installation and the new signing secret when the change made one (shown once).
    """
    permission = patch_permission(patch)
    caller.principal.require(permission)
    inst = await service.require(session, company_id)
    before = await snapshot(session, rt, inst)
    inst, secret = await service.apply_patch(session, rt, company_id, patch)
    after = await snapshot(session, rt, inst)
    if secret is not None:
        after["signing_secret"] = "new"  # noqa: S105 - a marker, not the secret
    old, new = _changed(before, after)
    if permission == Permission.operate:
        action = Action.installation_pause if patch.paused else Action.installation_resume
    else:
        action = Action.installation_update
    await audit.record(
        session,
        caller.actor,
        action,
        target=f"installation {company_id}",
        company_id=company_id,
        before=old,
        after=new,
    )
    return inst, secret


async def create_installation(
    session: AsyncSession, rt: Runtime, caller: Caller, company_id: int, environment: str | None
) -> tuple[Installation, bool]:
    """Creates or re-activates an installation for a company `/companies` lists."""
    caller.principal.require(Permission.configure)
    existing = await service.get(session, company_id)
    before = None if existing is None else {"status": existing.status}
    inst, created = await discovery.install_listed_company(session, rt, company_id, environment)
    await audit.record(
        session,
        caller.actor,
        Action.installation_create,
        target=f"installation {company_id}",
        company_id=company_id,
        before=before,
        after={"status": inst.status, "environment": inst.environment, "created": created},
    )
    return inst, created


async def rotate_destination_secret(
    session: AsyncSession,
    rt: Runtime,
    caller: Caller,
    company_id: int,
    *,
    secret: str | None = None,
    grace: timedelta | None = None,
) -> tuple[str, datetime | None]:
    """A new (or the operator's known) signing secret for the installation's HTTP destination;
    returns it and until when the replaced one keeps signing."""
    caller.principal.require(Permission.configure)
    made, until = await rotate_signing_secret(session, rt, company_id, secret=secret, grace=grace)
    await audit.record(
        session,
        caller.actor,
        Action.signing_secret_rotate,
        target=f"installation {company_id}",
        company_id=company_id,
        after={
            "signing_secret": "given by the operator" if secret else "new",
            "previous_valid_until": until.isoformat() if until else None,
        },
    )
    return made, until


async def replace_credentials(
    session: AsyncSession,
    rt: Runtime,
    caller: Caller,
    company_id: int,
    client_id: str,
    client_secret: str,
) -> Installation:
    """Replaces the DMSA credentials once Procore accepts them; the secret is never recorded."""
    caller.principal.require(Permission.configure)
    inst = await service.require(session, company_id)
    before = {"client_id": inst.client_id, "status": inst.status}
    inst = await service.replace_credentials(session, rt, company_id, client_id, client_secret)
    await audit.record(
        session,
        caller.actor,
        Action.credentials_replace,
        target=f"installation {company_id}",
        company_id=company_id,
        before=before,
        after={"client_id": client_id, "client_secret": "replaced", "status": inst.status},
    )
    return inst


async def queue_sync(
    session: AsyncSession, rt: Runtime, caller: Caller, company_id: int, *, full_refresh: bool
) -> SyncRun:
    """Queues a run now (409 while one runs)."""
    caller.principal.require(Permission.operate)
    inst = await service.require(session, company_id)
    service.ensure_syncable(inst)
    run, _created = await queue.enqueue(
        session, company_id, trigger="manual", full_refresh=full_refresh
    )
    await audit.record(
        session,
        caller.actor,
        Action.sync_queue,
        target=f"run {run.id}",
        company_id=company_id,
        after={"run_id": run.id, "full_refresh": full_refresh},
    )
    rt.wake_scheduler()
    return run


async def cancel_sync(session: AsyncSession, rt: Runtime, caller: Caller, run_id: str) -> SyncRun:
    """Stops a queued or running run."""
    caller.principal.require(Permission.operate)
    existing = await queue.get(session, run_id)
    before = {"status": existing.status} if existing is not None else None
    run = await queue.cancel(session, run_id)
    await audit.record(
        session,
        caller.actor,
        Action.sync_cancel,
        target=f"run {run_id}",
        company_id=run.company_id,
        before=before,
        after={"status": run.status, "cancel_requested": run.cancel_requested},
    )
    rt.cancel_local_runs(run_id=run_id)
    return run


async def uninstall(
    rt: Runtime, caller: Caller, company_id: int, *, purge: bool
) -> UninstallAnswer:
    """Uninstalls (and optionally purges); both are recorded, a failed purge too."""
    caller.principal.require(Permission.uninstall)
    async with unit_of_work(rt.sessions) as session:
        inst = await service.require(session, company_id)
        before = {"status": inst.status}
    target = f"installation {company_id}"
    try:
        answer = await uninstall_flow.uninstall_company(rt, company_id, purge=purge)
    except ConnectorError as exc:
        async with unit_of_work(rt.sessions) as session:
            now = await service.get(session, company_id)
            if now is not None and now.status != before["status"]:
                await audit.record(
                    session,
                    caller.actor,
                    Action.installation_uninstall,
                    target=target,
                    company_id=company_id,
                    before=before,
                    after={"status": now.status},
                )
            if purge:
                await audit.record(
                    session,
                    caller.actor,
                    Action.installation_purge,
                    target=target,
                    company_id=company_id,
                    after={"purged": False, "error": exc.message[:500]},
                )
        raise
    async with unit_of_work(rt.sessions) as session:
        await audit.record(
            session,
            caller.actor,
            Action.installation_uninstall,
            target=target,
            company_id=company_id,
            before=before,
            after={"status": answer.status},
        )
        if purge:
            await audit.record(
                session,
                caller.actor,
                Action.installation_purge,
                target=target,
                company_id=company_id,
                after={"purged": True, "deleted_rows": answer.deleted_rows},
            )
    await alerts.after_change(rt, company_id)
    return answer
