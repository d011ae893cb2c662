"""How each kind of unit is read: a strategy per cursor kind, all on the one UnitDriver.

- listing: `filters[updated_at]` windows (or a full listing), resumable per page;
- date windows: daily logs by `start_date`/`end_date`, resumable per window;
- children: a child stream listed per parent record, resumable per parent;
- projects: the permitted project list, read in full every run (it decides the units).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.core.database import unit_of_work, utcnow
from app.procore import (
    AppNotConnectedError,
    ProcoreBadRequestError,
    ProcoreForbiddenError,
    ProcoreNotFoundError,
)
from app.procore.catalog import STREAMS, Cursor, Stream
from app.runs import state as state_repo
from app.runs.progress import (
    ChildrenCheckpoint,
    DateWindowCheckpoint,
    DoneCheckpoint,
    ListingCheckpoint,
)
from app.sync.context import RunContext
from app.sync.records import parse_timestamp, record_id
from app.sync.units import UnitDriver, UnitState, known_ids_after, updated_at_filter

DATE_WINDOW_DAYS = 30
# Ids a full listing's checkpoint carries at most (about 11 bytes each, rewritten per page):
# a bigger listing resumed mid-way decides no deletes; its next uninterrupted read does.
MAX_CARRIED_IDS = 10_000

Reader = Callable[[UnitDriver, UnitState], Awaitable[None]]


# A unit that answered 403/404 (a tool disabled in that project, a permission the app lacks)
# is asked again a day later, not on every run: Integration Health counts each 403/404
# (procore-api.md section 10).
DENIED_RETRY = timedelta(days=1)


class UnitDeferred(ProcoreForbiddenError):
    """The unit answered 403/404 recently; it is not asked again before its retry time."""


async def run_unit(ctx: RunContext, stream: Stream, project_id: int | None) -> None:
    """Syncs one unit; returns when its listing completed (or it was already done this run)."""
    unit = UnitDriver(ctx, stream, project_id)
    state = await unit.load_state()
    if isinstance(state.resume, DoneCheckpoint):
        if state.resume.pending is not None:  # found before a restart of this run
            ctx.pending_deletes.append(state.resume.pending)
        return
    if state.skip_until is not None and state.skip_until > utcnow():
        raise UnitDeferred(
            f"answered 403/404 before; asked again after {state.skip_until.isoformat()}"
        )
    try:
        await reader_for(stream)(unit, state)
    except (ProcoreForbiddenError, ProcoreNotFoundError) as exc:
        if not isinstance(exc, AppNotConnectedError):
            await _defer(ctx, stream, project_id, utcnow() + DENIED_RETRY)
        raise
    if state.skip_until is not None:
        await _defer(ctx, stream, project_id, None)


async def _defer(
    ctx: RunContext, stream: Stream, project_id: int | None, until: datetime | None
) -> None:
    """Remembers (or forgets) when a denied unit may be asked again."""
    async with unit_of_work(ctx.rt.sessions) as session:
        row = await state_repo.load(session, ctx.company_id, stream.name, project_id)
        row.skip_until = until


def reader_for(stream: Stream) -> Reader:
    """The strategy that reads units of this stream."""
    if stream.parent:
        return read_children
    if stream.cursor == Cursor.date_window:
        return read_date_windows
    return read_listing


async def read_listing(unit: UnitDriver, state: UnitState) -> None:
    """A listing: changes since the cursor (with a lookback), or everything when full.

    A stream with several listings (users and their inactive list) reads them in turn, with
    the same filters; together they decide the stream's known ids.
    """
    ctx, stream = unit.ctx, unit.stream
    resume = state.resume if isinstance(state.resume, ListingCheckpoint) else None
    full = unit.is_full(state) if resume is None else resume.full
    params = unit.params()
    if not full and stream.cursor == Cursor.updated_at:
        assert state.cursor is not None  # a cursorless unit is always read in full
        start = state.cursor - timedelta(seconds=ctx.rt.settings.lookback_seconds)
        params["filters[updated_at]"] = updated_at_filter(start, ctx.window_end)
    if resume is not None:
        params = dict(resume.params)
    seen: set[int] | None = None
    if full:
        if resume is None:
            seen = set()
        elif resume.seen is not None:
            seen = set(resume.seen)  # the pages read before the pause or crash
    listed: list[int] = []
    paths = stream.list_paths(company_id=ctx.company_id, project_id=unit.project_id)
    first_path = resume.path_index if resume else 0
    decide_deletes = True
    for index in range(first_path, len(paths)):
        if resume is not None and index == first_path and resume.path_done:
            continue  # read to its end before the pause or crash
        at = (
            _Position(index, paths[index], resume.next_page, resume.per_page)
            if (resume and index == first_path)
            else _Position(index, paths[index], 1, None)
        )
        try:
            complete = await _list(unit, params, at, full, seen, listed)
        except (ProcoreForbiddenError, ProcoreNotFoundError) as exc:
            if index == 0 or isinstance(exc, AppNotConnectedError):
                raise
            # A further listing (inactive people) the app may not read: the main listing
            # stands, but an incomplete set of ids must not decide deletes.
            unit.stats.note = f"{at.path} not read: {exc.status}"[:200]
            decide_deletes = False
            continue
        except ProcoreBadRequestError as exc:
            too_large = exc.status == 408  # never answered with a bigger, unfiltered read
            if too_large or "filters[updated_at]" not in params or at.page != 1 or index != 0:
                raise
            # An endpoint that refuses the updated_at filter is read in full instead.
            unit.stats.note = "filters[updated_at] refused: read in full"
            params.pop("filters[updated_at]")
            full, seen = True, (set() if resume is None else None)
            complete = await _list(unit, params, at, full, seen, listed)
        if not complete and "filters[updated_at]" in params:
            # Records changed while the pages were read, so the page boundaries moved and some
            # records were skipped: read the changes once more (upserts make it harmless).
            complete = await _list(
                unit, params, _Position(index, at.path, 1, None), full, None, listed
            )
        if not complete:
            seen = None  # a listing that shifted under us must not decide deletes
    if seen is not None:
        ctx.listed_ids[(stream.name, unit.project_id)] = sorted(seen)
    await unit.find_deletes(
        seen if decide_deletes else None,
        state.known_ids,
        first_sync=state.cursor is None and state.known_ids is None,
        window=params.get("filters[updated_at]"),
    )
    await unit.complete(
        cursor=ctx.window_end if stream.cursor == Cursor.updated_at else None,
        known_ids=known_ids_after(seen, state.known_ids, listed if state.known_ids else []),
        full_done=seen is not None and state.known_ids is None,
    )


@dataclass(frozen=True)
class _Position:
    """Where a listing is read from: which of the stream's listings, page and page size."""

    index: int
    path: str
    page: int
    per_page: int | None


async def _list(
    unit: UnitDriver,
    params: dict[str, Any],
    at: _Position,
    full: bool,
    seen: set[int] | None,
    listed: list[int],
) -> bool:
    """Reads a listing page by page: write, then checkpoint what the destination took.

    Returns False when a listing read from its first page got fewer records than its first
    page's `Total` announced (records left the listing while it was read).
    """
    announced: int | None = None
    read = 0
    async for page in unit.pages(params, at.page, path=at.path, per_page=at.per_page):
        if at.page == 1 and page.page == 1:
            announced = page.total
        read += len(page.records)
        ids = await unit.write(page.records)
        if seen is not None:
            seen.update(ids)
        else:
            listed.extend(ids)
        checkpoint = ListingCheckpoint(
            run_id=unit.ctx.run_id,
            full=full,
            params=params,
            next_page=page.next_page or page.page + 1,
            path_index=at.index,
            per_page=page.per_page,
            seen=sorted(seen) if seen is not None and len(seen) <= MAX_CARRIED_IDS else None,
            path_done=page.next_page is None,
        )
        await unit.save(checkpoint, written=len(ids))
    return announced is None or read >= announced


async def read_date_windows(unit: UnitDriver, state: UnitState) -> None:
    """Daily logs: read date windows from the cursor (or the history start) up to today."""
    ctx = unit.ctx
    settings = ctx.rt.settings
    today = ctx.window_end.date()
    if isinstance(state.resume, DateWindowCheckpoint):
        start = state.resume.window_start
    else:
        start = first_window_day(
            state.cursor,
            full_refresh=ctx.full_refresh,
            today=today,
            lookback_days=settings.daily_log_lookback_days,
            history_start=settings.history_start_date(today),
        )
    while start <= today:
        end = min(start + timedelta(days=DATE_WINDOW_DAYS - 1), today)
        params = unit.params() | {"start_date": start.isoformat(), "end_date": end.isoformat()}
        written = 0
        async for page in unit.pages(params):
            written += len(await unit.write(page.records))
        start = end + timedelta(days=1)
        await unit.save(
            DateWindowCheckpoint(run_id=ctx.run_id, window_start=start), written=written
        )
    await unit.complete(
        cursor=datetime.combine(today, datetime.min.time(), UTC), known_ids=None, full_done=False
    )


def first_window_day(
    cursor: datetime | None,
    *,
    full_refresh: bool,
    today: date,
    lookback_days: int,
    history_start: date,
) -> date:
    """Where date windows start: a few days before the cursor (logs of past days are still
    entered and edited), or the history start on a first or full run."""
    if cursor is not None and not full_refresh:
        return min(cursor.date() - timedelta(days=max(1, lookback_days)), today)
    return history_start


async def read_children(unit: UnitDriver, state: UnitState) -> None:
    """A child stream (e.g. budget_detail_rows): lists the parent ids, then each parent's
    children, always in full; resumes per parent."""
    ctx = unit.ctx
    parent = STREAMS[unit.stream.parent or ""]
    resume = state.resume if isinstance(state.resume, ChildrenCheckpoint) else None
    done: list[int] = list(resume.parents_done) if resume else []
    parent_ids = ctx.listed_ids.get((parent.name, unit.project_id))
    if parent_ids is None:  # the parent stream was not read in full in this attempt
        parent_ids = []
        parent_path = parent.list_path(company_id=ctx.company_id, project_id=unit.project_id)
        async for page in unit.pages(unit.params(), path=parent_path):
            parent_ids.extend(rid for rid in map(record_id, page.records) if rid is not None)
    seen: set[int] | None = set() if resume is None else None
    for parent_id in parent_ids:
        if parent_id in done:
            continue
        written = 0
        async for page in unit.pages(unit.params(), path=unit.path(parent_id)):
            ids = await unit.write(page.records, parent_id=parent_id)
            written += len(ids)
            if seen is not None:
                seen.update(ids)
        done.append(parent_id)
        await unit.save(ChildrenCheckpoint(run_id=ctx.run_id, parents_done=done), written=written)
    await unit.find_deletes(seen, state.known_ids, first_sync=state.known_ids is None, window=None)
    await unit.complete(
        cursor=None,
        known_ids=known_ids_after(seen, state.known_ids, []),
        full_done=seen is not None and state.known_ids is None,
    )


async def read_projects(ctx: RunContext) -> None:
    """Lists the permitted projects (always in full: it is one request per page of projects).

    Writes changed projects when the `projects` stream is selected, and records which projects
    vanished from the permitted list (`ctx.missing_projects`) instead of deleting their data.
    """
    unit = UnitDriver(ctx, STREAMS["projects"], None)
    selected = "projects" in ctx.streams
    if selected:
        unit.stats.start()
        unit.stats.units_total = 1
    state = await unit.load_state()
    since = None
    if state.cursor is not None and not ctx.full_refresh:
        since = state.cursor - timedelta(seconds=ctx.rt.settings.lookback_seconds)
    current: list[int] = []
    written = 0
    try:
        async for page in unit.pages(unit.params()):
            current.extend(rid for rid in map(record_id, page.records) if rid is not None)
            if selected:
                changed = [
                    r
                    for r in page.records
                    if since is None or (parse_timestamp(r.get("updated_at")) or since) >= since
                ]
                written += len(await unit.write(changed))
    finally:
        if not selected:
            ctx.stats.pop("projects", None)  # read for its ids only: not a stream of this run
    known = set(state.known_ids or [])
    ctx.project_ids = current
    ctx.missing_projects = sorted(known - set(current))
    ctx.projects_listed = True
    async with unit_of_work(ctx.rt.sessions) as session:
        await ctx.guard(session)
        row = await state_repo.load(session, ctx.company_id, "projects", None)
        row.known_ids = sorted(known.union(current))
        if selected:
            # Only a written listing moves the cursor: a later selection of `projects` must
            # still find every project to write.
            row.cursor = ctx.window_end
            row.last_success_at = utcnow()
            row.records = (row.records or 0) + written
    if selected:
        unit.stats.units_done = 1
        unit.stats.stop("succeeded")
