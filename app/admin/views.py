"""Builds admin views of installations (secrets redacted) from the stored rows."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from app.credentials import service as secrets
from app.credentials.models import SecretKind
from app.destinations import redact_destination_url
from app.installations import service
from app.installations.destination import destination_url_for
from app.installations.models import Installation
from app.installations.schemas import (
    CredentialsView,
    InstallationDetail,
    InstallationView,
    RunSummary,
    StreamStateView,
    StreamUnitState,
)
from app.procore.catalog import parse_stream_selection
from app.runs import state as state_repo
from app.runs.models import SyncRun
from app.runs.state import COMPANY_SCOPE
from app.runtime import Runtime


def credentials_view(inst: Installation, rt: Runtime, *, has_secret: bool) -> CredentialsView:
    """Which credentials the installation uses; never the secret itself."""
    source = service.credentials_source(inst, rt)
    if source == "installation":
        client_id, secret_set = inst.client_id, has_secret
    elif source == "app":
        client_id, secret_set = rt.settings.client_id, True
    else:
        client_id, secret_set = None, has_secret
    return CredentialsView(source=source, client_id=client_id, client_secret_set=secret_set)


async def installation_view(
    session: AsyncSession, rt: Runtime, inst: Installation
) -> InstallationView:
    """One installation with its last run; the destination URL is redacted."""
    last = None
    if inst.last_run_id:
        run = await session.get(SyncRun, inst.last_run_id)
        if run is not None:
            last = RunSummary(
                run_id=run.id,
                status=run.status,
                trigger=run.trigger,
                queued_at=run.queued_at,
                started_at=run.started_at,
                finished_at=run.finished_at,
                error=run.error,
            )
    has_secret = await secrets.has_secret(session, inst.company_id, SecretKind.client_secret)
    return InstallationView(
        company_id=inst.company_id,
        company_name=inst.company_name,
        status=inst.status,
        status_reason=inst.status_reason,
        environment=inst.environment,
        source=inst.source,
        schedule=inst.schedule,
        time_zone=inst.time_zone or "UTC",
        streams=parse_stream_selection(inst.streams),
        paused=inst.paused,
        destination=redact_destination_url(await destination_url_for(session, rt, inst)),
        credentials=credentials_view(inst, rt, has_secret=has_secret),
        next_run_at=inst.next_run_at,
        missing_projects=list(inst.missing_projects or []),
        health={str(k): int(v) for k, v in (inst.health or {}).items()},
        credentials_error=inst.credentials_error,
        created_at=inst.created_at,
        updated_at=inst.updated_at,
        uninstalled_at=inst.uninstalled_at,
        last_run=last,
    )


async def installation_detail(
    session: AsyncSession, rt: Runtime, inst: Installation
) -> InstallationDetail:
    """One installation with its per-stream state: figures per stream and per unit."""
    view = await installation_view(session, rt, inst)
    rows = await state_repo.for_company(session, inst.company_id)
    by_stream: dict[str, list[StreamUnitState]] = defaultdict(list)
    for row in rows:
        by_stream[row.stream].append(
            StreamUnitState(
                project_id=None if row.project_id == COMPANY_SCOPE else row.project_id,
                cursor=row.cursor,
                last_success_at=row.last_success_at,
                rows_in_destination=None if row.known_ids is None else len(row.known_ids),
                records_written_total=row.records or 0,
                checkpoint=row.checkpoint,
            )
        )
    last_run = await session.get(SyncRun, inst.last_run_id) if inst.last_run_id else None
    last_streams = last_run.progress.streams if last_run is not None else {}
    summary: dict[str, StreamStateView] = {}
    for stream, units in by_stream.items():
        cursors = [u.cursor for u in units]
        successes = [u.last_success_at for u in units]
        rows_known = [u.rows_in_destination for u in units]
        last = last_streams.get(stream)
        in_destination = None if None in rows_known else sum(n for n in rows_known if n is not None)
        written = sum(u.records_written_total for u in units)
        summary[stream] = StreamStateView(
            cursor=None if None in cursors else min(c for c in cursors if c is not None),
            last_success_at=(
                None if None in successes else min(t for t in successes if t is not None)
            ),
            records=written if in_destination is None else in_destination,
            rows_in_destination=in_destination,
            records_written_total=written,
            records_written_last_run=None if last is None else last.records_written,
            projects=sum(1 for u in units if u.project_id is not None),
            units=units,
        )
    return InstallationDetail(**view.model_dump(), stream_state=summary)
