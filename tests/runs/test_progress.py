"""The typed run ledger JSON: progress and checkpoints round-trip, and old shapes still load."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from app.runs.progress import (
    ChildrenCheckpoint,
    DateWindowCheckpoint,
    DoneCheckpoint,
    ListingCheckpoint,
    PendingDelete,
    RunProgress,
    StreamStats,
    dump_checkpoint,
    load_checkpoint,
)


class TestRunProgress:
    def test_round_trips_through_its_json_form(self) -> None:
        progress = RunProgress(
            window_end=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            requests=7,
            token_requests=1,
            records=12,
            streams={"rfis": StreamStats(status="succeeded", records_written=12, requests=3)},
            missing_projects=[9],
        )
        stored = progress.dump()
        assert stored["window_end"] == "2026-01-02T03:04:05Z"
        assert RunProgress.load(stored) == progress

    def test_an_empty_row_is_a_fresh_run(self) -> None:
        assert RunProgress.load(None) == RunProgress()
        assert RunProgress.load({}).streams == {}


class TestCheckpoints:
    @pytest.mark.parametrize(
        "checkpoint",
        [
            ListingCheckpoint(run_id="r", full=True, params={"a": "1"}, next_page=3),
            DateWindowCheckpoint(run_id="r", window_start=date(2026, 2, 1)),
            ChildrenCheckpoint(run_id="r", parents_done=[1, 2]),
            DoneCheckpoint(
                run_id="r",
                pending=PendingDelete(
                    stream="rfis", project_id=4, ids=[5], previous_count=0, new_known_ids=None
                ),
            ),
        ],
    )
    def test_each_kind_round_trips(self, checkpoint: object) -> None:
        stored = dump_checkpoint(checkpoint)  # type: ignore[arg-type]
        assert load_checkpoint(stored) == checkpoint

    @pytest.mark.parametrize(
        ("stored", "kind"),
        [
            ({"run_id": "r", "done": True}, DoneCheckpoint),
            ({"run_id": "r", "full": False, "params": {}, "next_page": 2}, ListingCheckpoint),
            ({"run_id": "r", "full": False, "window_start": "2026-01-01"}, DateWindowCheckpoint),
            ({"run_id": "r", "full": True, "parents_done": [3]}, ChildrenCheckpoint),
        ],
    )
    def test_checkpoints_written_before_they_were_typed_still_load(
        self, stored: dict[str, object], kind: type
    ) -> None:
        assert isinstance(load_checkpoint(stored), kind)

    def test_a_done_checkpoint_keeps_the_deletes_it_found(self) -> None:
        stored = {
            "run_id": "r",
            "done": True,
            "pending": {
                "stream": "rfis",
                "project_id": 1,
                "ids": [2, 3],
                "previous_count": 10,
                "new_known_ids": [1],
            },
        }
        loaded = load_checkpoint(stored)
        assert isinstance(loaded, DoneCheckpoint) and loaded.pending is not None
        assert loaded.pending.ids == [2, 3]

    def test_nothing_stored_is_no_checkpoint(self) -> None:
        assert load_checkpoint(None) is None
        assert load_checkpoint({}) is None

    def test_a_malformed_checkpoint_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            load_checkpoint({"run_id": "r", "kind": "listing", "next_page": "x"})
