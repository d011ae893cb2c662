"""Turning Procore JSON into destination records, and the updated_at filter's range."""

from __future__ import annotations

from datetime import UTC, datetime

from app.sync.records import to_destination
from app.sync.units import updated_at_filter

NOW = datetime(2024, 6, 1, tzinfo=UTC)


class TestToDestination:
    def test_builds_from_procore_json(self) -> None:
        data = {"id": 17, "updated_at": "2024-05-01T12:00:00Z", "deleted_at": None, "title": "x"}
        [record], skipped = to_destination([data], project_id=3, now=NOW)
        assert (record.id, record.project_id, skipped) == (17, 3, 0)
        assert record.updated_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        assert record.deleted_at is None
        assert record.data is data

    def test_reads_procore_deleted_at_and_deleted_flags(self) -> None:
        stamped = {"id": 1, "deleted_at": "2024-05-02T08:30:00.123Z"}
        flagged = {"id": 2, "deleted": True}
        [first, second], _ = to_destination([stamped, flagged], project_id=None, now=NOW)
        assert first.deleted_at == datetime(2024, 5, 2, 8, 30, 0, 123000, tzinfo=UTC)
        assert first.updated_at is None
        assert second.deleted_at == NOW

    def test_a_record_without_id_is_skipped_and_counted(self) -> None:
        records, skipped = to_destination(
            [{"name": "no id"}, {"id": True}, {"id": "12"}], project_id=None, now=NOW
        )
        assert [r.id for r in records] == [12] and skipped == 2


class TestUpdatedAtFilter:
    def test_end_is_rounded_up_to_the_next_second(self) -> None:
        start = datetime(2024, 5, 1, 10, 0, 0, 900000, tzinfo=UTC)
        end = datetime(2024, 5, 1, 11, 0, 0, 1, tzinfo=UTC)
        assert updated_at_filter(start, end) == "2024-05-01T10:00:00Z...2024-05-01T11:00:01Z"
