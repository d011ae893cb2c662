"""Turns a claimed run into the engine's inputs: a RunSpec and a RunContext."""

from __future__ import annotations

import asyncio
import functools

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import unit_of_work, utcnow
from app.destinations import InvalidDestinationURL, create_destination
from app.destinations.policy import policy_from_settings
from app.installations import destination
from app.installations import service as installations
from app.installations.models import InstallationStatus
from app.procore.catalog import parse_stream_selection
from app.runs import queue
from app.runs.models import SyncRun
from app.runs.progress import RunProgress
from app.runtime import Runtime
from app.sync.context import RunContext, RunFenced, RunSpec
from app.webhooks import budget, subscriptions
from app.webhooks import repository as inbox_repo
from app.webhooks import service as webhooks


class FatalRunError(Exception):
    """The whole run must stop before it starts (installation gone or not active)."""


async def build_spec(rt: Runtime, run: SyncRun) -> RunSpec:
    """Loads what a run needs: credentials, destination, streams, the window end, what webhooks
    cover and the requests it may make."""
    previous = run.progress
    if previous.window_end is None:
        # Before the window opens, so no change falls between this run and the first delivery.
        await subscriptions.ensure_before_run(rt, run.company_id)
    async with unit_of_work(rt.sessions) as session:
        inst = await installations.get(session, run.company_id)
        if inst is None:
            raise FatalRunError(f"no installation for company {run.company_id}")
        if inst.status != InstallationStatus.active:
            raise FatalRunError(f"installation {run.company_id} is {inst.status}")
        creds = await installations.credentials_for(session, rt, inst)
        url = await destination.destination_url_for(session, rt, inst)
        signing, previous_secrets = await destination.signing_secrets(
            session, rt.keyring, inst.company_id
        )
        streams = parse_stream_selection(inst.streams)
        # Before the first write, so that a purge finds this destination whatever happens.
        await destination.remember_destination(session, rt.keyring, inst.company_id, url)
        coverage, allowance = await webhooks.run_inputs(session, rt, run, creds)
    return RunSpec(
        run_id=run.id,
        company_id=run.company_id,
        creds=creds,
        destination_url=url,
        signing_secret=signing,
        previous_signing_secrets=tuple(previous_secrets),
        streams=streams,
        full_refresh=run.full_refresh,
        # A resumed run keeps the window it started with, so its filters and cursors line up.
        window_end=previous.window_end or utcnow(),
        previous=previous,
        destination_generation=inst.destination_generation or 0,
        targets=run.work,
        coverage=coverage,
        request_allowance=allowance,
        yield_after_seconds=rt.settings.webhook_yield_after_seconds,
    )


def make_context(rt: Runtime, spec: RunSpec, stop: asyncio.Event) -> RunContext:
    """The engine's context for one run, saving progress on the run's ledger row and counting
    the requests it made against the installation's budget."""
    counted = [spec.previous.requests, spec.previous.reconciled_units]

    async def account(session: AsyncSession, progress: RunProgress) -> None:
        requests, reconciled = progress.requests, progress.reconciled_units
        await budget.record(
            session, spec.company_id, requests - counted[0], reconciled - counted[1]
        )
        counted[:] = [max(counted[0], requests), max(counted[1], reconciled)]

    async def save_progress(session: AsyncSession, progress: RunProgress, *, run_id: str) -> None:
        await queue.save_progress(session, run_id, progress)
        await account(session, progress)

    async def events_waiting() -> bool:
        async with unit_of_work(rt.sessions) as session:
            return await inbox_repo.has_pending(session, spec.company_id)

    try:
        target = create_destination(
            spec.destination_url,
            policy=policy_from_settings(rt.settings),
            http=rt.http,
            signing_secret=spec.signing_secret,
            previous_signing_secrets=spec.previous_signing_secrets,
        )
    except InvalidDestinationURL as exc:  # e.g. the destination policy changed since
        raise FatalRunError(str(exc)) from None

    async def guard(session: AsyncSession) -> None:
        if not await installations.fence_holds(
            session, spec.company_id, spec.destination_generation
        ):
            raise RunFenced("the destination changed during the run")

    return RunContext(
        rt=rt,
        spec=spec,
        destination=target,
        save_progress=functools.partial(save_progress, run_id=spec.run_id),
        guard=guard,
        events_waiting=events_waiting,
        account=account,
        stop=stop,
    )
