"""Syncing one unit: one stream of one company or one project, page by page with checkpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
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
from app.scheduling import queue
from app.sync import state as state_repo
from app.sync.catalog import STREAMS, Cursor, Deletes, Stream
from app.sync.context import PendingDelete, RunContext
from app.sync.records import deleted_at_of, record_id, to_destination

DATE_WINDOW_DAYS = 30


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


class UnitSync:
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

    async def run(self) -> None:
        """Syncs the unit; returns when its listing completed (or it was already done this run)."""
        ctx = self.ctx
        async with unit_of_work(ctx.rt.sessions) as session:
            row = await state_repo.load(session, ctx.company_id, self.stream.name, self.project_id)
            cursor, checkpoint = row.cursor, row.checkpoint
            known_ids = row.known_ids
            last_full_at = row.last_full_at
        if checkpoint and checkpoint.get("run_id") == ctx.run_id and checkpoint.get("done"):
            self._restore_pending(checkpoint)
            return  # finished before a restart of this run
        resume = checkpoint if checkpoint and checkpoint.get("run_id") == ctx.run_id else None
        if self.stream.cursor == Cursor.date_window:
            await self._run_date_windows(cursor, resume)
            return
        full = self._is_full(cursor, last_full_at) if resume is None else bool(resume["full"])
        params = self._params()
        if not full and self.stream.cursor == Cursor.updated_at:
            assert cursor is not None  # a cursorless unit is always read in full
            start = cursor - timedelta(seconds=ctx.rt.settings.lookback_seconds)
            params["filters[updated_at]"] = updated_at_filter(start, ctx.window_end)
        if resume is not None:
            params = dict(resume["params"])
        start_page = int(resume["next_page"]) if resume else 1
        seen: set[int] | None = set() if (full and resume is None) else None
        listed: list[int] = []
        try:
            complete = await self._list(params, start_page, full, seen, listed)
        except ProcoreBadRequestError:
            if "filters[updated_at]" not in params or start_page != 1:
                raise
            # An endpoint that refuses the updated_at filter is read in full instead.
            self.stats.note = "filters[updated_at] refused: read in full"
            params.pop("filters[updated_at]")
            full, seen = True, (set() if resume is None else None)
            complete = await self._list(params, 1, full, seen, listed)
        if not complete and "filters[updated_at]" in params:
            # Records changed while the pages were read, so the page boundaries moved and some
            # records were skipped: read the changes once more (upserts make it harmless).
            complete = await self._list(params, 1, full, None, listed)
        if not complete:
            seen = None  # a listing that shifted under us must not decide deletes
        await self._find_deletes(seen, known_ids)
        await self._complete(
            cursor=ctx.window_end if self.stream.cursor == Cursor.updated_at else None,
            known_ids=self._known_after(seen, known_ids, listed if known_ids else []),
            full_done=seen is not None and known_ids is None,
        )

    async def _list(
        self,
        params: dict[str, Any],
        start_page: int,
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
        async for page in self._pages(params, start_page):
            if start_page == 1 and page.page == 1:
                announced = page.total
            read += len(page.records)
            ids = await self._write(page.records)
            if seen is not None:
                seen.update(ids)
            else:
                listed.extend(ids)
            await self._checkpoint(
                {
                    "run_id": self.ctx.run_id,
                    "full": full,
                    "params": params,
                    "next_page": page.next_page or page.page + 1,
                },
                written=len(ids),
            )
        return announced is None or read >= announced

    def _is_full(self, cursor: datetime | None, last_full_at: datetime | None) -> bool:
        settings = self.ctx.rt.settings
        if self.ctx.full_refresh or cursor is None or self.stream.cursor == Cursor.none:
            return True
        if self.stream.deletes == Deletes.id_diff:
            due = timedelta(seconds=settings.full_listing_interval_seconds)
            return last_full_at is None or utcnow() - last_full_at >= due
        return False

    def _params(self) -> dict[str, Any]:
        return self.stream.list_params(company_id=self.ctx.company_id, project_id=self.project_id)

    def _path(self, parent_id: int | None = None) -> str:
        return self.stream.list_path(
            company_id=self.ctx.company_id, project_id=self.project_id, parent_id=parent_id
        )

    async def _pages(
        self, params: dict[str, Any], start_page: int, path: str | None = None
    ) -> AsyncIterator[Page]:
        """Pages of a listing; the stop flag is checked before each page is used."""
        ctx = self.ctx
        pages = ctx.rt.procore.paginate(
            ctx.creds,
            path or self._path(),
            company_id=ctx.company_id,
            params=params,
            stats=self.requests,
            start_page=start_page,
        )
        async for page in pages:
            self._count_requests()
            ctx.check()
            yield page
        self._count_requests()

    def _count_requests(self) -> None:
        delta = self.requests.requests - self._counted_requests
        self._counted_requests = self.requests.requests
        self.stats.requests += delta
        self.ctx.requests.requests += delta
        tokens = self.requests.token_requests - self._counted_tokens
        self._counted_tokens = self.requests.token_requests
        self.ctx.requests.token_requests += tokens

    async def _write(self, records: list[dict[str, Any]]) -> list[int]:
        """Writes a page to the destination; returns the ids written."""
        ctx = self.ctx
        batch, skipped = to_destination(records, project_id=self.project_id, now=utcnow())
        self.stats.records_read += len(records)
        self.stats.records_skipped += skipped
        if batch:
            self.stats.count_write(
                await ctx.destination.write(
                    self.stream.name, ctx.company_id, batch, run_id=ctx.run_id
                )
            )
        return [record.id for record in batch]

    async def _checkpoint(self, checkpoint: dict[str, Any], *, written: int) -> None:
        """Saves progress after the destination acknowledged the page.

        The run's figures are saved in the same transaction, so a resumed run carries on
        from exactly what its checkpoints say.
        """
        ctx = self.ctx
        async with unit_of_work(ctx.rt.sessions) as session:
            row = await state_repo.load(session, ctx.company_id, self.stream.name, self.project_id)
            row.checkpoint = checkpoint
            row.records = (row.records or 0) + written
            await queue.save_stats(session, ctx.run_id, ctx.snapshot())

    def _queue(self, pending: PendingDelete) -> None:
        """Queues found deletes for the end of the run."""
        self.pending = pending
        self.ctx.pending_deletes.append(pending)

    def _restore_pending(self, checkpoint: dict[str, Any]) -> None:
        """Re-queues the deletes a unit found before this run was interrupted."""
        if isinstance(checkpoint.get("pending"), dict):
            self.ctx.pending_deletes.append(PendingDelete(**checkpoint["pending"]))

    async def _find_deletes(self, seen: set[int] | None, known_ids: list[int] | None) -> None:
        """Queues the deletes this unit found; they are applied when the run succeeds."""
        stream, ctx = self.stream, self.ctx
        if stream.deletes == Deletes.id_diff:
            if seen is not None and known_ids is not None:
                gone = sorted(set(known_ids) - seen)
                self._queue(
                    PendingDelete(stream.name, self.project_id, gone, len(known_ids), sorted(seen))
                )
            return
        deleted: list[int] = []
        try:
            if stream.deletes == Deletes.include_deleted:
                params = self._params() | {"filters[include_deleted]": "only"}
                async for page in self._pages(params, 1):
                    deleted.extend(self._deleted_ids(page.records, trust_unmarked=False))
            elif stream.deletes == Deletes.recycle_bin and stream.recycle_bin_path:
                path = stream.recycle_bin_path.format(
                    company_id=ctx.company_id, project_id=self.project_id
                )
                async for page in self._pages(self._params(), 1, path=path):
                    deleted.extend(self._deleted_ids(page.records, trust_unmarked=True))
        except (ProcoreBadRequestError, ProcoreNotFoundError, ProcoreForbiddenError) as exc:
            if isinstance(exc, AppNotConnectedError):
                raise
            # The records themselves were read; only the delete signal is unavailable here
            # (a tool without a recycle bin, a permission the app lacks): note it, go on.
            self.stats.note = f"deletes not read: {type(exc).__name__} {exc.status}"[:200]
            return
        if deleted:
            self._queue(PendingDelete(stream.name, self.project_id, sorted(set(deleted)), 0, None))

    @staticmethod
    def _deleted_ids(records: list[dict[str, Any]], *, trust_unmarked: bool) -> list[int]:
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

    @staticmethod
    def _known_after(
        seen: set[int] | None, known_ids: list[int] | None, listed: list[int]
    ) -> list[int] | None:
        """Known ids to store now: a first full listing, or new ids added to the known set."""
        if seen is not None and known_ids is None:
            return sorted(seen)
        if seen is None and known_ids is not None and listed:
            return sorted(set(known_ids).union(listed))
        return None

    async def _complete(
        self, *, cursor: datetime | None, known_ids: list[int] | None, full_done: bool
    ) -> None:
        """Marks the unit done for this run and advances its cursor."""
        ctx = self.ctx
        now = utcnow()
        async with unit_of_work(ctx.rt.sessions) as session:
            row = await state_repo.load(session, ctx.company_id, self.stream.name, self.project_id)
            if cursor is not None:
                row.cursor = cursor
            row.checkpoint = {"run_id": ctx.run_id, "done": True}
            if self.pending is not None:
                # Kept with the unit, so a run resumed after this point still applies them.
                row.checkpoint["pending"] = asdict(self.pending)
            row.last_success_at = now
            if known_ids is not None:
                row.known_ids = known_ids
            if full_done:
                row.last_full_at = now
        self.stats.units_done += 1

    async def _run_date_windows(
        self, cursor: datetime | None, resume: dict[str, Any] | None
    ) -> None:
        """Daily logs: read date windows from the cursor (or the history start) up to today."""
        ctx = self.ctx
        today = ctx.window_end.date()
        if resume is not None:
            start = date.fromisoformat(resume["window_start"])
        elif cursor is not None and not ctx.full_refresh:
            # Logs of past days are still entered and edited: re-read a few days back.
            start = cursor.date() - timedelta(days=max(1, ctx.rt.settings.daily_log_lookback_days))
        else:
            start = ctx.rt.settings.history_start_date(today)
        while start <= today:
            end = min(start + timedelta(days=DATE_WINDOW_DAYS - 1), today)
            params = self._params() | {"start_date": start.isoformat(), "end_date": end.isoformat()}
            written = 0
            async for page in self._pages(params, 1):
                written += len(await self._write(page.records))
            start = end + timedelta(days=1)
            await self._checkpoint(
                {"run_id": ctx.run_id, "full": False, "window_start": start.isoformat()},
                written=written,
            )
        await self._complete(
            cursor=datetime.combine(today, datetime.min.time(), UTC),
            known_ids=None,
            full_done=False,
        )


class ChildUnitSync(UnitSync):
    """A child stream (e.g. budget_detail_rows): listed per parent record, always in full."""

    async def run(self) -> None:
        """Lists the parent ids, then each parent's children; resumes per parent."""
        ctx = self.ctx
        parent = STREAMS[self.stream.parent or ""]
        async with unit_of_work(ctx.rt.sessions) as session:
            row = await state_repo.load(session, ctx.company_id, self.stream.name, self.project_id)
            checkpoint, known_ids = row.checkpoint, row.known_ids
        if checkpoint and checkpoint.get("run_id") == ctx.run_id and checkpoint.get("done"):
            self._restore_pending(checkpoint)
            return
        resume = checkpoint if checkpoint and checkpoint.get("run_id") == ctx.run_id else None
        done: list[int] = list(resume["parents_done"]) if resume else []
        parent_path = parent.list_path(company_id=ctx.company_id, project_id=self.project_id)
        parent_ids: list[int] = []
        async for page in self._pages(self._params(), 1, path=parent_path):
            parent_ids.extend(rid for rid in map(record_id, page.records) if rid is not None)
        seen: set[int] | None = set() if resume is None else None
        for parent_id in parent_ids:
            if parent_id in done:
                continue
            written = 0
            async for page in self._pages(self._params(), 1, path=self._path(parent_id)):
                ids = await self._write(page.records)
                written += len(ids)
                if seen is not None:
                    seen.update(ids)
            done.append(parent_id)
            await self._checkpoint(
                {"run_id": ctx.run_id, "full": True, "parents_done": done}, written=written
            )
        await self._find_deletes(seen, known_ids)
        await self._complete(
            cursor=None,
            known_ids=self._known_after(seen, known_ids, []),
            full_done=seen is not None and known_ids is None,
        )
