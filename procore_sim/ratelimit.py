"""Procore-style rate limits: an hourly and a spike window per (client_id, company)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BucketKey = tuple[str | None, int | None]


@dataclass
class Window:
    """A fixed window that opens at its first request and allows `limit` requests."""

    limit: int
    length: float
    start: float = 0.0
    count: int = 0

    def roll(self, now: float) -> None:
        """Opens a fresh window when the current one has ended."""
        if now >= self.start + self.length:
            self.start = now
            self.count = 0

    @property
    def remaining(self) -> int:
        """Requests left in this window."""
        return max(self.limit - self.count, 0)

    @property
    def reset(self) -> float:
        """Unix time at which this window ends."""
        return self.start + self.length


@dataclass
class Decision:
    """The outcome of one request against the limits, with the headers to send."""

    allowed: bool
    headers: dict[str, str]
    retry_after: int = 0
    window: str = ""


@dataclass
class RateLimiter:
    """Counts requests per bucket in an hourly and a spike window."""

    hourly_limit: int
    spike_limit: int
    spike_seconds: float = 10.0
    hourly_seconds: float = 3600.0
    _buckets: dict[BucketKey, tuple[Window, Window]] = field(default_factory=dict)

    def configure(self, hourly: int | None, spike: int | None, spike_seconds: float) -> None:
        """Changes the limits and starts every bucket afresh."""
        if hourly is not None:
            self.hourly_limit = hourly
        if spike is not None:
            self.spike_limit = spike
        self.spike_seconds = spike_seconds
        self._buckets.clear()

    def _windows(self, key: BucketKey, now: float) -> tuple[Window, Window]:
        pair = self._buckets.get(key)
        if pair is None:
            pair = (Window(self.hourly_limit, self.hourly_seconds, now),
                    Window(self.spike_limit, self.spike_seconds, now))
            self._buckets[key] = pair
        for window in pair:
            window.roll(now)
        return pair

    @staticmethod
    def _headers(window: Window) -> dict[str, str]:
        return {
            "X-Rate-Limit-Limit": str(window.limit),
            "X-Rate-Limit-Remaining": str(window.remaining),
            "X-Rate-Limit-Reset": str(math.ceil(window.reset)),
        }

    @staticmethod
    def _nearer(hourly: Window, spike: Window) -> Window:
        # The headers describe the window closest to being spent (fewest requests left).
        return hourly if hourly.remaining < spike.remaining else spike

    def hit(self, key: BucketKey, now: float) -> Decision:
        """Counts one request, or refuses it when a window is spent."""
        hourly, spike = self._windows(key, now)
        spent = [w for w in (hourly, spike) if w.remaining == 0]
        if spent:
            longest = max(spent, key=lambda w: w.reset)
            retry = max(1, math.ceil(longest.reset - now))
            name = "hourly" if longest is hourly else "spike"
            return Decision(False, self._headers(longest), retry, name)
        hourly.count += 1
        spike.count += 1
        return Decision(True, self._headers(self._nearer(hourly, spike)))

    def peek(self, key: BucketKey, now: float) -> dict[str, str]:
        """The headers for a bucket without counting a request."""
        hourly, spike = self._windows(key, now)
        return self._headers(self._nearer(hourly, spike))
