"""The unit driver: one stream of one company or project, page by page with checkpoints.

`app/sync/readers.py` loads a unit's typed state once, returns at once when the unit already
finished in this run, and otherwise runs the strategy of the stream's cursor kind (listing,
date windows, parent/children) on a UnitDriver. Everything the strategies share lives here:
Procore pages with request accounting in one place, writes, checkpoints, delete signals and
completion.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.core.database import unit_of_work, utcnow
from app.procore import (
    AppNotConnectedError,
    Page,
    ProcoreBadRequestError,
    ProcoreForbiddenError,
    ProcoreNotFoundError,
    RequestStats,
)
from app.procore.catalog import Cursor, Deletes, Stream
from app.runs import state as state_repo
from app.runs.progress import Checkpoint, DoneCheckpoint, PendingDelete
from app.sync.context import RunContext, count_write
from app.sync.records import deleted_at_of, record_id, to_destination

# The start of a delete feed read in full (a full refresh of a unit that has data).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def updated_at_filter(start: datetime, end: datetime) -> str:
    """Procore's `filters[updated_at]` range in ISO 8601 UTC, whole seconds.

    The start is rounded down and the end up: Procore's timestamps carry fractions of a second,
    so cutting the end down to its second would miss a record changed earlier in that same
    second until the next run (reading a record twice is harmless, upserts are idempotent).
    """
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    end = end.astimezone(UTC)
    if end.microsecond:
        end = end.replace(microsecond=0) + timedelta(seconds=1)
    return f"{start.astimezone(UTC).strftime(fmt)}...{end.strftime(fmt)}"


def needs_full_listing(
    stream: Stream,
    *,
    full_refresh: bool,
    cursor: datetime | None,
    last_full_at: datetime | None,
    now: datetime,
    full_listing_interval: timedelta,
) -> bool:
    """Whether a unit is read in full: a full refresh, no cursor yet, a cursorless stream, or
    an id-diff stream whose periodic full listing (to find deletes) is due."""
    if full_refresh or cursor is None or stream.cursor == Cursor.none:
        return True
    if stream.deletes == Deletes.id_diff:
        return last_full_at is None or now - last_full_at >= full_listing_interval
    return False


def deleted_ids(records: list[dict[str, Any]], *, trust_unmarked: bool) -> list[int]:
    """Ids of a deleted-records listing that are really deleted.

    A record with a deletion marker counts. From a recycle bin (an endpoint of its own) a
    record without any deletion field counts too; from `filters[include_deleted]=only` it
    does not, so a server that ignored the filter cannot get every record marked deleted.
    """
    now = utcnow()
    ids = []
    for record in records:
        rid = record_id(record)
        if rid is None:
            continue
        unmarked = not any(key in record for key in ("deleted_at", "deleted", "is_deleted"))
        if (trust_unmarked and unmarked) or deleted_at_of(record, now) is not None:
            ids.append(rid)
    return ids


def known_ids_after(
    seen: set[int] | None, known_ids: list[int] | None, listed: list[int]
) -> list[int] | None:
    """Known ids to store now: a first full listing, or new ids added to the known set."""
    if seen is not None and known_ids is None:
        return sorted(seen)
    if seen is None and known_ids is not None and listed:
        return sorted(set(known_ids).union(listed))
    return None


@dataclass(frozen=True)
class UnitState:
    """A unit's stored state, read once at its start."""

    cursor: datetime | None
    known_ids: list[int] | None
    last_full_at: datetime | None
    resume: Checkpoint | None  # this run's checkpoint, when the run is resumed
    skip_until: datetime | None = None  # answered 403/404: not asked again before this


class UnitDriver:
    """Reads one (stream, project) unit into the destination, resuming from its checkpoint."""

    def __init__(self, ctx: RunContext, stream: Stream, project_id: int | None) -> None:
        self.ctx = ctx
        self.stream = stream
        self.project_id = project_id
        self.stats = ctx.stream_stats(stream.name)
        self.requests = RequestStats()
        self._counted_requests = 0
        self._counted_tokens = 0
        self.pending: PendingDelete | None = None

    async def load_state(self) -> UnitState:
        """The unit's cursor, known ids and (when this run is resumed) its checkpoint."""
        ctx = self.ctx
        async with unit_of_work(ctx.rt.sessions) as session:
            row = await state_repo.load(session, ctx.company_id, self.stream.name, self.project_id)
            checkpoint = row.saved_checkpoint
        return UnitState(
            cursor=row.cursor,
            known_ids=row.known_ids,
            last_full_at=row.last_full_at,
            resume=checkpoint if checkpoint and checkpoint.run_id == ctx.run_id else None,
            skip_until=row.skip_until,
        )

    def is_full(self, state: UnitState) -> bool:
        """Whether this unit is read in full in this run."""
        settings = self.ctx.rt.settings
        return needs_full_listing(
            self.stream,
            full_refresh=self.ctx.full_refresh,
            cursor=state.cursor,
            last_full_at=state.last_full_at,
            now=utcnow(),
            full_listing_interval=timedelta(seconds=settings.full_listing_interval_seconds),
        )

    def params(self) -> dict[str, Any]:
        """The stream's static query parameters for this unit."""
        return self.stream.list_params(company_id=self.ctx.company_id, project_id=self.project_id)

    def path(self, parent_id: int | None = None) -> str:
        """The stream's list endpoint for this unit (and a parent record)."""
        return self.stream.list_path(
            company_id=self.ctx.company_id, project_id=self.project_id, parent_id=parent_id
        )

    async def pages(
        self,
        params: dict[str, Any],
        start_page: int = 1,
        path: str | None = None,
        per_page: int | None = None,
    ) -> AsyncIterator[Page]:
        """Pages of a listing; the stop flag is checked before each page is used."""
        ctx = self.ctx
        pages = ctx.rt.procore.paginate(
            ctx.creds,
            path or self.path(),
            company_id=ctx.company_id,
            params=params,
            stats=self.requests,
            start_page=start_page,
            per_page=per_page,
            max_per_page=self.stream.max_per_page,
        )
        try:
            async for page in pages:
                self._count_requests()
                ctx.check()
                yield page
        finally:
            self._count_requests()

    def _count_requests(self) -> None:
        """Adds the requests made since the last call to the stream's and the run's figures."""
        delta = self.requests.requests - self._counted_requests
        self._counted_requests = self.requests.requests
        self.stats.requests += delta
        self.ctx.requests.requests += delta
        tokens = self.requests.token_requests - self._counted_tokens
        self._counted_tokens = self.requests.token_requests
        self.ctx.requests.token_requests += tokens

    async def write(
        self, records: list[dict[str, Any]], *, parent_id: int | None = None
    ) -> list[int]:
        """Writes a page to the destination; returns the ids written. Records of a child
        stream whose ids repeat under parents are keyed by (parent_id, id)."""
        ctx = self.ctx
        batch, skipped = to_destination(
            records, project_id=self.project_id, now=utcnow(), parent_id=parent_id
        )
        self.stats.records_read += len(records)
        self.stats.records_skipped += skipped
        if batch:
            result = await ctx.destination.write(
                self.stream.name, ctx.company_id, batch, run_id=ctx.run_id
            )
            count_write(self.stats, result)
        return [record.id for record in batch]

    async def save(self, checkpoint: Checkpoint, *, written: int) -> None:
        """Saves progress after the destination acknowledged the page.

        The run's figures are saved in the same transaction, so a resumed run carries on
        from exactly what its checkpoints say.
        """
        ctx = self.ctx
        async with unit_of_work(ctx.rt.sessions) as session:
            await ctx.guard(session)
            row = await state_repo.load(session, ctx.company_id, self.stream.name, self.project_id)
            row.saved_checkpoint = checkpoint
            row.records = (row.records or 0) + written
            await ctx.save_progress(session, ctx.snapshot())

    def queue_delete(self, pending: PendingDelete) -> None:
        """Queues found deletes for the end of the run."""
        self.pending = pending
        self.ctx.pending_deletes.append(pending)

    async def find_deletes(
        self,
        seen: set[int] | None,
        known_ids: list[int] | None,
        *,
        first_sync: bool,
        window: str | None,
    ) -> None:
        """Queues the deletes this unit found; they are applied when the run succeeds.

        Procore's own delete signals are read where it has them (include_deleted lists,
        recycle bins, recycle-bin and deleted_at filters), limited to the run's `window`
        (a `filters[updated_at]`-style range; None reads the whole feed). A unit's first sync
        reads no delete feed: there is nothing in the destination to delete yet.
        """
        stream = self.stream
        if stream.deletes == Deletes.id_diff:
            if seen is not None and known_ids is not None:
                gone = sorted(set(known_ids) - seen)
                self.queue_delete(
                    PendingDelete(
                        stream=stream.name,
                        project_id=self.project_id,
                        ids=gone,
                        previous_count=len(known_ids),
                        new_known_ids=sorted(seen),
                    )
                )
            return
        feed = None if first_sync else self._delete_feed(window)
        if feed is None:
            return
        path, params, trust_unmarked = feed
        found: list[int] = []
        try:
            async for page in self.pages(params, path=path):
                found.extend(deleted_ids(page.records, trust_unmarked=trust_unmarked))
        except (ProcoreBadRequestError, ProcoreNotFoundError, ProcoreForbiddenError) as exc:
            if isinstance(exc, AppNotConnectedError):
                raise
            # The records themselves were read; only the delete signal is unavailable here
            # (a tool without a recycle bin, a permission the app lacks): note it, go on.
            self.stats.note = f"deletes not read: {type(exc).__name__} {exc.status}"[:200]
            return
        if found:
            self.queue_delete(
                PendingDelete(
                    stream=stream.name,
                    project_id=self.project_id,
                    ids=sorted(set(found)),
                    previous_count=0,
                    new_known_ids=None,
                )
            )

    def _delete_feed(self, window: str | None) -> tuple[str, dict[str, Any], bool] | None:
        """(path, params, whether an unmarked record counts) of the stream's delete feed."""
        stream, params = self.stream, self.params()
        since = {"filters[updated_at]": window} if window else {}
        if stream.deletes == Deletes.include_deleted:
            return self.path(), params | since | {"filters[include_deleted]": "only"}, False
        if stream.deletes == Deletes.recycle_bin and stream.recycle_bin_path:
            path = stream.recycle_bin_path.format(
                company_id=self.ctx.company_id, project_id=self.project_id
            )
            return path, params | (since if stream.delete_feed_filtered else {}), True
        if stream.deletes == Deletes.recycle_filter:
            return self.path(), params | since | {"filters[is_in_recycle_bin]": "true"}, True
        if stream.deletes == Deletes.deleted_at_filter:
            deleted = window or updated_at_filter(EARLIEST, self.ctx.window_end)
            return self.path(), params | {"filters[deleted_at]": deleted}, True
        return None

    async def complete(
        self, *, cursor: datetime | None, known_ids: list[int] | None, full_done: bool
    ) -> None:
        """Marks the unit done for this run and advances its cursor."""
        ctx = self.ctx
        now = utcnow()
        async with unit_of_work(ctx.rt.sessions) as session:
            await ctx.guard(session)
            row = await state_repo.load(session, ctx.company_id, self.stream.name, self.project_id)
            if cursor is not None:
                row.cursor = cursor
            # Found deletes are kept with the unit, so a run resumed after this point still
            # applies them.
            row.saved_checkpoint = DoneCheckpoint(run_id=ctx.run_id, pending=self.pending)
            row.last_success_at = now
            if known_ids is not None:
                row.known_ids = known_ids
            if full_done:
                row.last_full_at = now
        self.stats.units_done += 1
