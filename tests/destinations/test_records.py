"""DestinationRecord: UTC normalisation and building from Procore JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.destinations import DestinationRecord
from app.destinations.records import check_stream_name, record_line, unique_last


class TestDestinationRecord:
    def test_converts_aware_timestamps_to_utc(self) -> None:
        local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
        record = DestinationRecord(
            id=1, project_id=None, updated_at=local, deleted_at=None, data={}
        )
        assert record.updated_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        assert record.updated_at is not None and record.updated_at.tzinfo is UTC

    def test_refuses_naive_timestamps(self) -> None:
        with pytest.raises(ValueError, match="updated_at must be a timezone-aware"):
            DestinationRecord(
                id=1, project_id=None, updated_at=datetime(2024, 5, 1), deleted_at=None, data={}
            )

    def test_serialises_to_the_line_format(self) -> None:
        record = DestinationRecord(
            id=1,
            project_id=None,
            updated_at=datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC),
            deleted_at=None,
            data={"id": 1, "updated_at": "2024-05-01T12:00:00.5+00:00"},
        )
        line = record_line(9, record, datetime(2024, 5, 3, tzinfo=UTC))
        assert line == {
            "company_id": 9,
            "id": 1,
            "project_id": None,
            "updated_at": "2024-05-01T12:00:00.500000Z",
            "deleted_at": None,
            "synced_at": "2024-05-03T00:00:00Z",
            "data": {"id": 1, "updated_at": "2024-05-01T12:00:00.5+00:00"},
        }

    def test_unique_last_keeps_the_last_version_in_first_position_order(self) -> None:
        records = [
            DestinationRecord(i, None, None, None, {"v": v})
            for i, v in [(1, "a"), (2, "b"), (1, "c")]
        ]
        assert [(r.id, r.data["v"]) for r in unique_last(records)] == [(2, "b"), (1, "c")]

    @pytest.mark.parametrize("name", ["RFIs", "1rfis", "rfis;", "", "a" * 64])
    def test_refuses_unsafe_stream_names(self, name: str) -> None:
        with pytest.raises(ValueError):
            check_stream_name(name)
