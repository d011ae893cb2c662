"""Schedules of installations: `every 15m` style intervals or 5-field cron lines."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

_INTERVAL = re.compile(r"^every\s+(\d+)\s*(s|m|h|d)$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_SECONDS = 60
MAX_INTERVAL_SECONDS = 366 * 86400
MAX_SPREAD_SECONDS = 900


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule that computes the next run time of one installation."""

    text: str
    interval_seconds: int | None = None
    cron: CronTrigger | None = None

    @functools.cached_property
    def period(self) -> int:
        """Nominal period in seconds (a cron line: the gap between two fire times), used to
        spread runs; computed once per parsed schedule."""
        if self.interval_seconds is not None:
            return self.interval_seconds
        assert self.cron is not None
        first = self.cron.get_next_fire_time(None, datetime(2025, 1, 1, tzinfo=UTC))
        second = self.cron.get_next_fire_time(first, first + timedelta(seconds=1))
        return max(60, int((second - first).total_seconds()))

    def next_run(self, after: datetime, company_id: int) -> datetime:
        """Next run strictly after `after`, shifted by the company's fixed offset."""
        offset = spread_offset(company_id, self.period)
        base = after - timedelta(seconds=offset)
        if self.interval_seconds is not None:
            epoch = int(base.timestamp())
            slot = (epoch // self.interval_seconds + 1) * self.interval_seconds
            return datetime.fromtimestamp(slot + offset, UTC)
        assert self.cron is not None
        fire: datetime = self.cron.get_next_fire_time(None, base + timedelta(seconds=1))
        return fire.astimezone(UTC) + timedelta(seconds=offset)


def spread_offset(company_id: int, period_seconds: int) -> int:
    """A deterministic per-company offset so installations on one schedule do not start together."""
    spread = min(period_seconds, MAX_SPREAD_SECONDS)
    digest = hashlib.sha256(str(company_id).encode()).digest()
    return int.from_bytes(digest[:4], "big") % max(spread, 1)


@functools.lru_cache(maxsize=256)
def parse_schedule(text: str) -> Schedule:
    """Parses `every 15m` / `every 1h` / a 5-field cron line; raises ValueError with the reason."""
    value = text.strip()
    match = _INTERVAL.match(value)
    if match:
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        if seconds < MIN_INTERVAL_SECONDS:
            raise ValueError(f"schedule {value!r} is shorter than the 1 minute minimum")
        if seconds > MAX_INTERVAL_SECONDS:
            raise ValueError(f"schedule {value!r} is longer than the 366 day maximum")
        return Schedule(value, interval_seconds=seconds)
    if len(value.split()) != 5:
        raise ValueError(f"schedule {value!r} is neither `every <n>m|h|d` nor a 5-field cron line")
    try:
        trigger = CronTrigger.from_crontab(value, timezone=UTC)
    except ValueError as exc:
        raise ValueError(f"schedule {value!r} is not a valid cron line: {exc}") from None
    start = datetime(2025, 1, 1, tzinfo=UTC)
    first = trigger.get_next_fire_time(None, start)
    if first is None or first - start > timedelta(seconds=MAX_INTERVAL_SECONDS):
        raise ValueError(f"schedule {value!r} never fires (or not within a year)")
    return Schedule(value, cron=trigger)
