"""Keeping each installation's hook in Procore as it should be (SPEC section 8).

One company-scoped hook per installation in the app's namespace, whose destination is
`{CONNECTOR_PUBLIC_URL}/webhooks/procore/{company_id}` (one endpoint per company, so a
delivery failure of one company never pauses another's: Procore pauses per endpoint) and whose
`destination_headers` carry the installation's secret, with create/update/delete triggers for
the resources of the selected streams. Reconciled idempotently: after install, when the
stream selection changes, periodically, and after a secret rotation; removed on uninstall.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import unit_of_work, utcnow
from app.core.errors import ConfigurationError
from app.core.logging import get_logger
from app.installations import service as installations
from app.installations.models import InstallationStatus
from app.procore import (
    AppNotConnectedError,
    ProcoreCredentials,
    ProcoreError,
    ProcoreForbiddenError,
    ProcoreNotFoundError,
    RequestStats,
)
from app.procore.catalog import parse_stream_selection
from app.runtime import Runtime
from app.webhooks import budget, repository
from app.webhooks import secrets as webhook_secrets
from app.webhooks.metrics import WEBHOOK_SUBSCRIPTIONS
from app.webhooks.models import SubscriptionStatus
from app.webhooks.procore_api import WebhooksApi
from app.webhooks.resources import EVENT_TYPES, STREAM_RESOURCES

log = get_logger(__name__)

RECEIVER_PATH = "/webhooks/procore"
RETRY_AFTER_ERROR = timedelta(minutes=5)
CHECK_LEASE = timedelta(minutes=5)  # one process reconciles a company at a time
DUE_BATCH = 50
ENSURE_WAIT_SECONDS = 30.0
NO_PERMISSION_NOTE = (
    "no Webhooks API permission in this company: polling only (set the Webhooks API tool "
    "permission to Standard in the app's data connector component)"
)


def endpoint_url(public_url: str, company_id: int) -> str:
    """Where Procore delivers this company's events."""
    return f"{public_url}{RECEIVER_PATH}/{company_id}"


@dataclass
class Plan:
    """What one reconcile needs, read before any call to Procore."""

    company_id: int
    creds: ProcoreCredentials | None
    remove: bool
    hook_id: int | None
    streams: str
    selected: list[str]
    url: str | None
    header: str | None
    secret_changed: bool
    covered: dict[str, str]
    last_discarded_id: int | None


@dataclass
class Result:
    """What one reconcile found in Procore."""

    status: SubscriptionStatus
    note: str | None = None
    hook_id: int | None = None
    covered: dict[str, str] = field(default_factory=dict)
    uncovered: list[str] = field(default_factory=list)
    triggers: int = 0
    discarded: int = 0
    last_discarded_id: int | None = None
    retry: bool = False


async def reconcile_due(rt: Runtime) -> int:
    """Reconciles every installation whose subscription is due; returns how many."""
    enabled = rt.settings.public_url is not None
    async with unit_of_work(rt.sessions) as session:
        due = await repository.due_for_check(session, utcnow(), enabled=enabled, limit=DUE_BATCH)
    done = 0
    for company_id in due:
        try:
            done += int(await reconcile(rt, company_id))
        except Exception as exc:  # one company's trouble must not stop the others
            log.warning(
                "webhook subscription reconcile failed",
                company_id=company_id,
                error=f"{type(exc).__name__}: {str(exc)[:200]}",
            )
    return done


async def reconcile(rt: Runtime, company_id: int, *, remove: bool = False) -> bool:
    """Makes Procore's hook of one installation what it should be (or deletes it); False if
    another process is doing it (or the installation is unknown)."""
    plan = await _prepare(rt, company_id, remove=remove)
    if plan is None:
        return False
    stats = RequestStats()
    if plan.remove:
        result = await _remove(rt, plan, stats)
    else:
        result = await _ensure(rt, plan, stats)
    await _save(rt, plan, result, stats)
    return True


async def _prepare(rt: Runtime, company_id: int, *, remove: bool) -> Plan | None:
    """Reads what the reconcile needs and leases the row for a few minutes."""
    settings = rt.settings
    now = utcnow()
    try:
        async with unit_of_work(rt.sessions) as session:
            inst = await installations.get(session, company_id)
            if inst is None:
                return None
            row = await webhook_secrets.subscription_row(session, company_id)
            if row.lease_until is not None and row.lease_until > now:
                return None  # another process is reconciling it
            row.lease_until = now + CHECK_LEASE
            active = inst.status == InstallationStatus.active
            remove = remove or not active or settings.public_url is None
            creds: ProcoreCredentials | None
            try:
                creds = await installations.credentials_for(session, rt, inst)
            except ConfigurationError:
                creds = None
            url = header = None
            if not remove:
                assert settings.public_url is not None
                url = endpoint_url(settings.public_url, company_id)
                header = webhook_secrets.header_value(
                    await webhook_secrets.ensure_secret(session, rt, company_id)
                )
            return Plan(
                company_id=company_id,
                creds=creds,
                remove=remove,
                hook_id=row.hook_id,
                streams=inst.streams,
                selected=parse_stream_selection(inst.streams),
                url=url,
                header=header,
                secret_changed=row.secret_changed,
                covered=dict(row.covered or {}),
                last_discarded_id=row.last_discarded_id,
            )
    except IntegrityError:  # another process created the row first
        return None


async def _ensure(rt: Runtime, plan: Plan, stats: RequestStats) -> Result:
    """Creates or repairs the hook and its triggers; reads discarded deliveries."""
    if plan.creds is None:
        return Result(
            SubscriptionStatus.error, "no DMSA credentials to call Procore with", retry=True
        )
    assert plan.url is not None and plan.header is not None
    api = WebhooksApi(rt.procore, plan.creds, plan.company_id, stats)
    headers = {"Authorization": plan.header}
    try:
        hooks = await api.hooks(rt.settings.webhook_namespace)
        mine = [h for h in hooks if h.get("destination_url") == plan.url]
        for stale in [h for h in hooks if h not in mine[:1]]:
            await api.delete_hook(int(stale["id"]))  # another URL or a duplicate of ours
        fresh = not mine
        if fresh:
            hook = await api.create_hook(rt.settings.webhook_namespace, plan.url, headers)
        else:
            hook = mine[0]
            shown = hook.get("destination_headers")
            if plan.secret_changed or (isinstance(shown, dict) and shown != headers):
                await api.update_hook(int(hook["id"]), plan.url, headers)
        hook_id = int(hook["id"])
        covered, uncovered, count = await _triggers(api, hook_id, plan.selected)
        discarded: list[dict[str, Any]] = []
        if not fresh:
            discarded = await api.discarded_after(hook_id, plan.last_discarded_id)
    except AppNotConnectedError as exc:
        return Result(SubscriptionStatus.error, f"app not connected: {exc.message}", retry=True)
    except ProcoreForbiddenError:
        return Result(SubscriptionStatus.no_permission, NO_PERMISSION_NOTE)
    except (ProcoreError, OSError, KeyError, TypeError, ValueError) as exc:
        return Result(SubscriptionStatus.error, _describe(exc), retry=True)
    now_text = utcnow().isoformat()
    since = {
        stream: (plan.covered.get(stream) if not fresh and stream in plan.covered else now_text)
        or now_text
        for stream in covered
    }
    note = None
    if uncovered:
        note = "polled on the schedule (no webhook resource): " + ", ".join(uncovered)
    ids = [int(d["id"]) for d in discarded if isinstance(d.get("id"), int)]
    return Result(
        SubscriptionStatus.active,
        note,
        hook_id=hook_id,
        covered=since,
        uncovered=uncovered,
        triggers=count,
        discarded=len(ids),
        last_discarded_id=max(ids) if ids else plan.last_discarded_id,
    )


async def _triggers(
    api: WebhooksApi, hook_id: int, selected: list[str]
) -> tuple[list[str], list[str], int]:
    """Makes the hook's triggers those of the selected streams; returns (covered streams,
    uncovered streams, trigger count)."""
    available = await api.resources()
    streams = [s for s in selected if STREAM_RESOURCES.get(s) in available]
    wanted = {(STREAM_RESOURCES[s], e) for s in streams for e in EVENT_TYPES}
    existing = await api.triggers(hook_id)
    have = {(str(t.get("resource_name")), str(t.get("event_type"))): t for t in existing}
    missing = sorted(wanted - set(have))
    extra = [int(t["id"]) for key, t in have.items() if key not in wanted and "id" in t]
    refused = await api.add_triggers(hook_id, missing) if missing else []
    if extra:
        await api.remove_triggers(hook_id, extra)
    present = set(have) & wanted | set(missing)
    if refused:  # read back which ones exist rather than parse the refusals
        present = {
            (str(t.get("resource_name")), str(t.get("event_type")))
            for t in await api.triggers(hook_id)
        }
    covered = [s for s in streams if all((STREAM_RESOURCES[s], e) in present for e in EVENT_TYPES)]
    uncovered = [s for s in selected if s not in covered]
    return covered, uncovered, len(present & wanted)


async def _remove(rt: Runtime, plan: Plan, stats: RequestStats) -> Result:
    """Deletes the hook of an installation that is gone (or when webhooks are switched off)."""
    if plan.hook_id is None:
        return Result(SubscriptionStatus.removed)
    if plan.creds is None:
        return Result(
            SubscriptionStatus.removed,
            f"hook {plan.hook_id} left in Procore: no credentials to delete it; its deliveries "
            "are answered 2xx and dropped",
        )
    api = WebhooksApi(rt.procore, plan.creds, plan.company_id, stats)
    try:
        await api.delete_hook(plan.hook_id)
    except ProcoreNotFoundError:
        pass
    except ProcoreError as exc:
        if not isinstance(exc, ProcoreForbiddenError):
            return Result(
                SubscriptionStatus.error, _describe(exc), hook_id=plan.hook_id, retry=True
            )
        return Result(
            SubscriptionStatus.removed,
            f"hook {plan.hook_id} could not be deleted ({_describe(exc)}); its deliveries are "
            "answered 2xx and dropped",
        )
    return Result(SubscriptionStatus.removed)


async def _save(rt: Runtime, plan: Plan, result: Result, stats: RequestStats) -> None:
    now = utcnow()
    settings = rt.settings
    async with unit_of_work(rt.sessions) as session:
        row = await webhook_secrets.subscription_row(session, plan.company_id)
        row.status = result.status
        row.note = result.note
        row.checked_at = now
        row.namespace = settings.webhook_namespace
        if result.status == SubscriptionStatus.active:
            row.hook_id = result.hook_id
            row.destination_url = plan.url
            row.secret_changed = False
        elif result.status != SubscriptionStatus.error:
            row.hook_id = result.hook_id
            row.destination_url = None
        row.covered = result.covered if result.status == SubscriptionStatus.active else {}
        row.uncovered = result.uncovered
        row.triggers = result.triggers
        row.streams = plan.streams
        if result.discarded:
            row.repair_from = now
            log.warning(
                "Procore discarded webhook deliveries: covered units are read again",
                company_id=plan.company_id,
                discarded=result.discarded,
            )
        row.last_discarded_id = result.last_discarded_id
        wait = (
            RETRY_AFTER_ERROR
            if result.retry
            else timedelta(seconds=settings.webhook_resubscribe_seconds)
        )
        row.next_check_at = None if result.status == SubscriptionStatus.removed else now + wait
        row.lease_until = None
        await budget.record(session, plan.company_id, stats.requests, 0)
    if result.status != SubscriptionStatus.active or result.note:
        log.info(
            "webhook subscription reconciled",
            company_id=plan.company_id,
            status=str(result.status),
            note=result.note,
            requests=stats.requests,
        )


async def remove_before_uninstall(rt: Runtime, company_id: int) -> None:
    """Deletes an installation's hook while its credentials still exist (best effort: the
    periodic reconcile tries again with the app's own credentials)."""
    async with unit_of_work(rt.sessions) as session:
        row = await repository.subscription(session, company_id)
    if row is None or row.hook_id is None:
        return
    try:
        await reconcile(rt, company_id, remove=True)
    except Exception as exc:
        log.warning("webhook hook not removed before uninstall", error=_describe(exc))


async def ensure_before_run(rt: Runtime, company_id: int) -> None:
    """Subscribes an installation that never was before its run's window opens, so no change
    falls between the run's reads and the first delivery (waits for a reconcile another task
    is doing, a bounded time)."""
    if rt.settings.public_url is None:
        return
    deadline = time.monotonic() + ENSURE_WAIT_SECONDS
    while time.monotonic() < deadline:
        async with unit_of_work(rt.sessions) as session:
            row = await repository.subscription(session, company_id)
        if row is not None and (row.checked_at is not None or row.status != "pending"):
            return
        leased = row is not None and row.lease_until is not None and row.lease_until > utcnow()
        if not leased:
            try:
                if await reconcile(rt, company_id):
                    return
            except Exception as exc:
                log.warning("webhook subscription before the run failed", error=_describe(exc))
                return
        await asyncio.sleep(0.2)


async def count_statuses(session: AsyncSession) -> None:
    """Sets the subscriptions-by-status gauge."""
    counts = await repository.status_counts(session)
    WEBHOOK_SUBSCRIPTIONS.clear()
    for status, count in counts.items():
        WEBHOOK_SUBSCRIPTIONS.labels(status).set(count)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"
