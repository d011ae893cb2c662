"""Procore-style rate limits: an hourly and a spike window per (client_id, company).

Procore documents an hourly (60-minute) and a spike (10-second) window, headers describing the
one closest to being spent, and a short window that "rolls forward" (X-Rate-Limit-Remaining
"may increase again after a brief pause as the window rolls forward"; rate_limiting.md). So the
spike window here is rolling (the requests of the last N seconds) and the hourly one is fixed,
opened by its first request.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

BucketKey = tuple[str | None, int | None]


@dataclass
class FixedWindow:
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

    def reset(self, now: float) -> float:
        """Unix time at which this window ends."""
        return self.start + self.length

    def add(self, now: float) -> None:
        """Counts one request."""
        self.count += 1


@dataclass
class RollingWindow:
    """Allows `limit` requests in any `length` seconds: the last `length` seconds are counted."""

    limit: int
    length: float
    hits: deque[float] = field(default_factory=deque)

    def roll(self, now: float) -> None:
        """Forgets requests older than the window."""
        horizon = now - self.length
        while self.hits and self.hits[0] <= horizon:
            self.hits.popleft()

    @property
    def remaining(self) -> int:
        """Requests left right now."""
        return max(self.limit - len(self.hits), 0)

    def reset(self, now: float) -> float:
        """Unix time at which the oldest counted request leaves the window (a slot frees)."""
        return self.hits[0] + self.length if self.hits else now

    def add(self, now: float) -> None:
        """Counts one request."""
        self.hits.append(now)


Window = FixedWindow | RollingWindow


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
    _buckets: dict[BucketKey, tuple[FixedWindow, RollingWindow]] = field(default_factory=dict)

    def configure(self, hourly: int | None, spike: int | None, spike_seconds: float) -> None:
        """Changes the limits and starts every bucket afresh."""
        if hourly is not None:
            self.hourly_limit = hourly
        if spike is not None:
            self.spike_limit = spike
        self.spike_seconds = spike_seconds
        self._buckets.clear()

    def _windows(self, key: BucketKey, now: float) -> tuple[FixedWindow, RollingWindow]:
        pair = self._buckets.get(key)
        if pair is None:
            pair = (
                FixedWindow(self.hourly_limit, self.hourly_seconds, now),
                RollingWindow(self.spike_limit, self.spike_seconds),
            )
            self._buckets[key] = pair
        for window in pair:
            window.roll(now)
        return pair

    @staticmethod
    def _headers(window: Window, now: float) -> dict[str, str]:
        return {
            "X-Rate-Limit-Limit": str(window.limit),
            "X-Rate-Limit-Remaining": str(window.remaining),
            "X-Rate-Limit-Reset": str(math.ceil(window.reset(now))),
        }

    @staticmethod
    def _nearer(hourly: FixedWindow, spike: RollingWindow) -> Window:
        # The headers describe the window closest to being spent (fewest requests left).
        return hourly if hourly.remaining < spike.remaining else spike

    def hit(self, key: BucketKey, now: float) -> Decision:
        """Counts one request, or refuses it when a window is spent."""
        hourly, spike = self._windows(key, now)
        spent: list[Window] = [w for w in (hourly, spike) if w.remaining == 0]
        if spent:
            longest = max(spent, key=lambda w: w.reset(now))
            retry = max(1, math.ceil(longest.reset(now) - now))
            name = "hourly" if longest is hourly else "spike"
            return Decision(False, self._headers(longest, now), retry, name)
        hourly.add(now)
        spike.add(now)
        return Decision(True, self._headers(self._nearer(hourly, spike), now))

    def peek(self, key: BucketKey, now: float) -> dict[str, str]:
        """The headers for a bucket without counting a request."""
        hourly, spike = self._windows(key, now)
        return self._headers(self._nearer(hourly, spike), now)
