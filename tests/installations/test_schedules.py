"""Schedules: parsing, the deterministic per-company spread, next run times."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from app.installations.schedules import MAX_SPREAD_SECONDS, parse_schedule, spread_offset

NOW = datetime(2025, 3, 4, 10, 7, 30, tzinfo=UTC)


class TestParseSchedule:
    @pytest.mark.parametrize(
        ("text", "period"),
        [("every 15m", 900), ("every 1h", 3600), ("EVERY 2d", 172800), ("*/5 * * * *", 300)],
    )
    def test_accepts_intervals_and_cron_lines(self, text: str, period: int) -> None:
        assert parse_schedule(text).period == period

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("every 0m", "1 minute minimum"),
            ("every 30s", "unit 's' is not supported"),
            ("every 90s", "unit 's' is not supported"),
            ("every 15 minutes", "unit 'minutes' is not supported"),
            ("* * * *", "is not one of"),
            ("61 * * * *", "not a valid cron line"),
            ("", "is not one of"),
        ],
    )
    def test_rejects_with_the_reason(self, text: str, reason: str) -> None:
        with pytest.raises(ValueError, match=reason):
            parse_schedule(text)


class TestNextRun:
    def test_interval_is_strictly_after_and_within_one_period(self) -> None:
        schedule = parse_schedule("every 15m")
        for company_id in range(1, 200):
            at = schedule.next_run(NOW, company_id)
            assert NOW < at <= NOW + timedelta(minutes=15)
            assert schedule.next_run(at, company_id) == at + timedelta(minutes=15)

    def test_cron_fires_at_its_slot_for_every_company(self) -> None:
        schedule = parse_schedule("0 2 * * *")
        assert {schedule.next_run(NOW, company_id) for company_id in range(1, 50)} == {
            datetime(2025, 3, 5, 2, 0, tzinfo=UTC)
        }
        assert 0 <= spread_offset(42, 86400) < MAX_SPREAD_SECONDS

    def test_offset_is_deterministic(self) -> None:
        schedule = parse_schedule("every 1h")
        assert schedule.next_run(NOW, 7) == schedule.next_run(NOW, 7)

    def test_a_thousand_installations_do_not_start_in_the_same_second(self) -> None:
        schedule = parse_schedule("every 1h")
        starts = Counter(schedule.next_run(NOW, company_id) for company_id in range(1000, 2000))
        assert len(starts) > 550  # ~1,000 draws from 900 seconds
        assert max(starts.values()) <= 6
