"""Rate-limit pacing: one limiter per (client_id, company_id), fed by X-Rate-Limit-* headers."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Mapping

# A reset above this is unix seconds; below it, seconds from now.
_EPOCH_THRESHOLD = 1_000_000_000


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return int(float(raw))
    except ValueError:
        return None


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


class CompanyLimiter:
    """Paces the requests of one token to one company so that no window is ever overspent.

    The answer headers describe whichever window (spike or hourly) is nearer exhaustion. Before
    each send the limiter sees how much of that window is left (remaining minus requests still
    in flight): none left means sleep until the reset; plenty left means send now; otherwise the
    rest is spread evenly over the time to the reset. With nothing known (first call, after a
    reset or a 429) one probe request goes alone to learn the current window.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        burst_fraction: float = 0.5,
        reset_margin: float = 1.0,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._burst_fraction = burst_fraction
        self._reset_margin = reset_margin
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_raw: float | None = None
        self._reset_at: float | None = None
        self._in_flight = 0
        self._blocked_until = 0.0
        self._last_send = -math.inf
        self._unmetered = False
        self._probing = False
        self._changed = asyncio.Event()

    @property
    def in_flight(self) -> int:
        """Returns how many requests were sent and have not been answered yet."""
        return self._in_flight

    @property
    def remaining(self) -> int | None:
        """Returns the last known remaining budget of the nearest window (None if unknown)."""
        return self._remaining

    async def acquire(self) -> None:
        """Waits until one more request may be sent, then counts it as in flight."""
        while True:
            now = self._clock()
            wait = self._wait_time(now)
            if wait <= 0:
                if self._remaining is None:
                    self._probing = True
                self._in_flight += 1
                self._last_send = now
                return
            changed = self._changed
            timeout = None if math.isinf(wait) else wait
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)

    def release(self, headers: Mapping[str, str] | None, status: int | None = None) -> None:
        """Marks one request answered and learns the window from its headers, if any."""
        self._in_flight = max(0, self._in_flight - 1)
        self._probing = False
        if headers is not None:
            self._learn(headers, status)
        self._notify()

    def block_for(self, seconds: float) -> None:
        """Sends nothing for ``seconds`` (after a 429 or 503), then probes the window afresh."""
        self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))
        self._forget_window()
        self._notify()

    def seconds_until_reset(self) -> float | None:
        """Returns the time to the known window's reset, if one is known."""
        if self._reset_at is None:
            return None
        return max(0.0, self._reset_at - self._clock())

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _forget_window(self) -> None:
        self._limit = self._remaining = None
        self._reset_raw = self._reset_at = None

    def _wait_time(self, now: float) -> float:
        if now < self._blocked_until:
            return self._blocked_until - now
        if self._unmetered:
            return 0.0
        if (
            self._remaining is None
            or self._reset_at is None
            or now >= self._reset_at + self._reset_margin
        ):
            self._forget_window()
            return math.inf if self._probing else 0.0
        available = self._remaining - self._in_flight
        until_reset = self._reset_at + self._reset_margin - now
        if available <= 0:
            return until_reset
        if self._limit and available > self._limit * self._burst_fraction:
            return 0.0
        interval = until_reset / available
        return max(0.0, self._last_send + interval - now)

    def _learn(self, headers: Mapping[str, str], status: int | None) -> None:
        limit = _header_int(headers, "x-rate-limit-limit")
        remaining = _header_int(headers, "x-rate-limit-remaining")
        reset_raw = _header_float(headers, "x-rate-limit-reset")
        if remaining is None or reset_raw is None:
            if limit is None and status is not None and status < 400 and self._remaining is None:
                self._unmetered = True  # this API does not meter: do not serialise on probes
            return
        self._unmetered = False
        now = self._clock()
        if reset_raw > _EPOCH_THRESHOLD:
            reset_at = now + (reset_raw - self._wall_clock())
        else:
            reset_at = now + reset_raw
        if reset_at + self._reset_margin <= now:
            return  # an answer from a window that is already over
        if self._reset_raw is not None and self._remaining is not None and (
            reset_raw == self._reset_raw
        ):
            remaining = min(remaining, self._remaining)
        self._limit = limit if limit is not None else self._limit
        self._remaining = max(0, remaining)
        self._reset_raw = reset_raw
        self._reset_at = reset_at


class RateLimiters:
    """The limiters of every (client_id, company_id) this client talks to."""

    def __init__(self, factory: Callable[[], CompanyLimiter] = CompanyLimiter) -> None:
        self._factory = factory
        self._limiters: dict[tuple[str, int | None], CompanyLimiter] = {}

    def get(self, client_id: str, company_id: int | None) -> CompanyLimiter:
        """Returns the limiter shared by every task using this token against this company."""
        key = (client_id, company_id)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = self._factory()
        return limiter
