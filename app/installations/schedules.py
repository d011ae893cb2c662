"""Schedules of installations: `every 15m` style intervals or 5-field cron lines in a time zone.

Two kinds, two rules (docs/decisions/0015-operator-polish.md):

- `every <n>m|h|d` intervals are aligned on the UTC epoch and shifted by a fixed per-company
  offset (at most 15 minutes, less than the period), so a thousand installations on `every 1h`
  do not all start in the same second. The time zone does not move them.
- A cron line fires at its slot, in the installation's IANA time zone (default UTC), with no
  per-company offset: `0 2 * * *` in `Europe/Berlin` starts at 02:00 Berlin time.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.cron import CronTrigger

_INTERVAL = re.compile(r"^every\s+(\d+)\s*([a-z]+)$", re.IGNORECASE)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_SECONDS = 60
MAX_INTERVAL_SECONDS = 366 * 86400
MAX_SPREAD_SECONDS = 900
DEFAULT_TIME_ZONE = "UTC"
ACCEPTED = "`every <n>m`, `every <n>h`, `every <n>d` (e.g. every 15m) or a 5-field cron line"


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule that computes the next run time of one installation."""

    text: str
    interval_seconds: int | None = None
    cron: CronTrigger | None = None
    time_zone: str = DEFAULT_TIME_ZONE

    @property
    def spread(self) -> bool:
        """Whether runs are shifted by the per-company offset (intervals only)."""
        return self.interval_seconds is not None

    @functools.cached_property
    def period(self) -> int:
        """Nominal period in seconds (a cron line: the gap between its first two fire times
        in 2025); computed once per parsed schedule."""
        if self.interval_seconds is not None:
            return self.interval_seconds
        assert self.cron is not None
        first = self.cron.get_next_fire_time(None, datetime(2025, 1, 1, tzinfo=UTC))
        second = self.cron.get_next_fire_time(first, first + timedelta(seconds=1))
        return max(60, int((second - first).total_seconds()))

    def next_run(self, after: datetime, company_id: int) -> datetime:
        """Next run strictly after `after` (UTC): an interval slot shifted by the company's fixed
        offset, or the cron line's next slot in its time zone."""
        if self.interval_seconds is not None:
            offset = spread_offset(company_id, self.interval_seconds)
            epoch = int((after - timedelta(seconds=offset)).timestamp())
            slot = (epoch // self.interval_seconds + 1) * self.interval_seconds
            return datetime.fromtimestamp(slot + offset, UTC)
        assert self.cron is not None
        start = after.replace(microsecond=0) + timedelta(seconds=1)
        fire: datetime = self.cron.get_next_fire_time(None, start)
        return fire.astimezone(UTC)


def spread_offset(company_id: int, period_seconds: int) -> int:
    """A deterministic per-company offset so installations on one interval do not start together."""
    spread = min(period_seconds, MAX_SPREAD_SECONDS)
    digest = hashlib.sha256(str(company_id).encode()).digest()
    return int.from_bytes(digest[:4], "big") % max(spread, 1)


@functools.lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_time_zone(name: str) -> ZoneInfo:
    """An IANA time zone such as `Europe/Berlin`; raises ValueError naming what is accepted."""
    value = name.strip()
    if value.upper() == "UTC":
        return ZoneInfo("UTC")
    if value not in _known_zones():
        raise ValueError(
            f"time zone {value!r} is not an IANA time zone name "
            "(e.g. UTC, Europe/Berlin, America/New_York)"
        )
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):  # pragma: no cover - listed but unreadable
        raise ValueError(f"time zone {value!r} cannot be loaded") from None


def normalise_time_zone(name: str) -> str:
    """The stored spelling of a time zone (`utc` becomes `UTC`); raises ValueError."""
    zone = parse_time_zone(name)
    return str(zone.key)


def parse_schedule(text: str, time_zone: str = DEFAULT_TIME_ZONE) -> Schedule:
    """Parses `every 15m` / `every 1h` / `every 1d` / a 5-field cron line (read in `time_zone`);
    raises ValueError with the reason and what is accepted."""
    return _parse(text.strip(), normalise_time_zone(time_zone))


@functools.lru_cache(maxsize=512)
def _parse(value: str, time_zone: str) -> Schedule:
    match = _INTERVAL.match(value)
    if match:
        unit = match.group(2).lower()
        if unit not in _UNIT_SECONDS:
            raise ValueError(
                f"schedule {value!r}: unit {match.group(2)!r} is not supported; use {ACCEPTED}"
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[unit]
        if seconds < MIN_INTERVAL_SECONDS:
            raise ValueError(f"schedule {value!r} is shorter than the 1 minute minimum")
        if seconds > MAX_INTERVAL_SECONDS:
            raise ValueError(f"schedule {value!r} is longer than the 366 day maximum")
        return Schedule(value, interval_seconds=seconds, time_zone=time_zone)
    if len(value.split()) != 5:
        raise ValueError(f"schedule {value!r} is not one of {ACCEPTED}")
    try:
        trigger = CronTrigger.from_crontab(value, timezone=ZoneInfo(time_zone))
    except ValueError as exc:
        raise ValueError(f"schedule {value!r} is not a valid cron line: {exc}") from None
    start = datetime(2025, 1, 1, tzinfo=UTC)
    first = trigger.get_next_fire_time(None, start)
    if first is None or first - start > timedelta(seconds=MAX_INTERVAL_SECONDS):
        raise ValueError(f"schedule {value!r} never fires (or not within a year)")
    return Schedule(value, cron=trigger, time_zone=time_zone)
