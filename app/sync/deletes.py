"""Applying the deletes a run found, once its stream has succeeded, behind a mass-delete guard."""

from __future__ import annotations

from collections import defaultdict

from app.core.database import unit_of_work, utcnow
from app.core.logging import get_logger
from app.runs import state as state_repo
from app.runs.progress import PendingDelete
from app.sync.context import RunContext

log = get_logger(__name__)

# Below this many known records the share guard does not apply (one of two is 50%).
GUARD_MIN_RECORDS = 20


def guard_verdict(pending: list[PendingDelete], ratio: float) -> str | None:
    """Why a stream's id-diff deletes are refused, or None when they may go ahead."""
    previous = sum(item.previous_count for item in pending if item.new_known_ids is not None)
    gone = sum(len(item.ids) for item in pending if item.new_known_ids is not None)
    if previous < GUARD_MIN_RECORDS or gone <= ratio * previous:
        return None
    return (
        f"refused to mark {gone} of {previous} records deleted in one run "
        f"(more than {ratio:.0%}); raise CONNECTOR_DELETE_GUARD_RATIO to let them through"
    )


async def apply(ctx: RunContext, *, skip: set[str] | frozenset[str] = frozenset()) -> None:
    """Marks found deletes in the destination and stores the new known id sets, except for the
    streams in `skip` (those that failed in this run)."""
    by_stream: dict[str, list[PendingDelete]] = defaultdict(list)
    for item in ctx.pending_deletes:
        if item.stream not in skip:
            by_stream[item.stream].append(item)
    now = utcnow()
    for stream, items in by_stream.items():
        stats = ctx.stream_stats(stream)
        verdict = guard_verdict(items, ctx.rt.settings.delete_guard_ratio)
        if verdict:
            stats.delete_guard = verdict
            log.warning("delete guard tripped", stream=stream, reason=verdict)
        for item in items:
            if item.ids and not (verdict and item.new_known_ids is not None):
                stats.records_deleted += await ctx.destination.mark_deleted(
                    stream, ctx.company_id, item.ids, now, run_id=ctx.run_id
                )
            if item.new_known_ids is not None and not verdict:
                async with unit_of_work(ctx.rt.sessions) as session:
                    await ctx.guard(session)
                    row = await state_repo.load(session, ctx.company_id, stream, item.project_id)
                    row.known_ids = item.new_known_ids
                    row.last_full_at = now
