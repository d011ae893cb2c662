"""Pure rules of the unit driver and readers: full listings, known ids, delete markers, windows,
and the mass-delete guard."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from app.procore.catalog import STREAMS
from app.runs.progress import PendingDelete
from app.sync.deletes import GUARD_MIN_RECORDS, guard_verdict
from app.sync.readers import first_window_day
from app.sync.units import deleted_ids, known_ids_after, needs_full_listing

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def full(stream: str, **kwargs: object) -> bool:
    options: dict[str, object] = {
        "full_refresh": False,
        "cursor": NOW - DAY,
        "last_full_at": NOW - DAY / 2,
        "now": NOW,
        "full_listing_interval": DAY,
    }
    options.update(kwargs)
    return needs_full_listing(STREAMS[stream], **options)  # type: ignore[arg-type]


class TestNeedsFullListing:
    def test_an_incremental_stream_with_a_cursor_reads_changes_only(self) -> None:
        assert not full("rfis")

    def test_no_cursor_or_a_full_refresh_reads_everything(self) -> None:
        assert full("rfis", cursor=None)
        assert full("rfis", full_refresh=True)

    def test_a_cursorless_stream_is_always_full(self) -> None:
        assert full("cost_codes")

    def test_an_id_diff_stream_lists_in_full_once_its_interval_is_due(self) -> None:
        assert not full("users", last_full_at=NOW - DAY / 2)
        assert full("users", last_full_at=NOW - DAY)
        assert full("users", last_full_at=None)


class TestKnownIds:
    def test_a_first_full_listing_becomes_the_known_set(self) -> None:
        assert known_ids_after({3, 1}, None, []) == [1, 3]

    def test_new_ids_of_an_incremental_listing_join_the_known_set(self) -> None:
        assert known_ids_after(None, [1, 2], [2, 5]) == [1, 2, 5]

    def test_a_later_full_listing_waits_for_the_delete_guard(self) -> None:
        # The new known set travels with the pending delete and is stored only if applied.
        assert known_ids_after({1}, [1, 2], []) is None


class TestDeletedIds:
    def test_markers_count_and_unmarked_records_count_only_from_a_recycle_bin(self) -> None:
        records = [
            {"id": 1, "deleted_at": "2026-01-01T00:00:00Z"},
            {"id": 2, "deleted": True},
            {"id": 3},
            {"id": 4, "deleted_at": None, "deleted": False},
        ]
        assert deleted_ids(records, trust_unmarked=False) == [1, 2]
        assert deleted_ids(records, trust_unmarked=True) == [1, 2, 3]


class TestDateWindows:
    def test_an_incremental_run_re_reads_a_few_days_back(self) -> None:
        start = first_window_day(
            NOW,
            full_refresh=False,
            today=NOW.date(),
            lookback_days=7,
            history_start=date(2025, 1, 1),
        )
        assert start == date(2026, 5, 25)

    def test_a_first_or_full_run_starts_at_the_history_start(self) -> None:
        for cursor, refresh in ((None, False), (NOW, True)):
            start = first_window_day(
                cursor,
                full_refresh=refresh,
                today=NOW.date(),
                lookback_days=7,
                history_start=date(2025, 1, 1),
            )
            assert start == date(2025, 1, 1)


def pending(gone: int, previous: int) -> PendingDelete:
    return PendingDelete(
        stream="users",
        project_id=None,
        ids=list(range(gone)),
        previous_count=previous,
        new_known_ids=[],
    )


class TestDeleteGuard:
    def test_a_normal_share_of_deletes_goes_through(self) -> None:
        assert guard_verdict([pending(10, 100)], 0.5) is None

    def test_more_than_the_ratio_is_refused_with_the_setting_to_raise(self) -> None:
        verdict = guard_verdict([pending(60, 100)], 0.5)
        assert verdict is not None and "CONNECTOR_DELETE_GUARD_RATIO" in verdict

    def test_small_streams_are_not_guarded(self) -> None:
        assert guard_verdict([pending(GUARD_MIN_RECORDS - 1, GUARD_MIN_RECORDS - 1)], 0.5) is None

    def test_deletes_procore_reports_are_never_guarded(self) -> None:
        reported = PendingDelete(
            stream="rfis", project_id=1, ids=list(range(90)), previous_count=0, new_known_ids=None
        )
        assert guard_verdict([reported], 0.5) is None

    def test_the_guard_counts_across_projects_of_one_stream(self) -> None:
        assert guard_verdict([pending(15, 20), pending(15, 20)], 0.5) is not None
