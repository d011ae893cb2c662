"""Rate-limit pacing: one limiter per (client_id, company_id), fed by X-Rate-Limit-* headers."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import time
from collections.abc import Callable, Mapping

import httpx

from app.core.logging import get_logger
from app.core.retry import RetryBudget, parse_retry_after
from app.procore.errors import (
    ProcoreRateLimitError,
    ProcoreServerError,
    message_from_response,
    request_id_of,
)

# A reset above this is unix seconds; below it, seconds from now.
_EPOCH_THRESHOLD = 1_000_000_000
# A 429 this soon after a window was thought over means the reset is rounded down: widen margin.
_EARLY_PROBE_SECONDS = 2.0


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


log = get_logger(__name__)


class WindowWaitTooLongError(Exception):
    """The wait for the rate-limit window is longer than the caller may wait."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the rate-limit window resets in {seconds:.0f} s")
        self.seconds = seconds


class ServerClock:
    """Estimates how far Procore's clock is ahead of ours, from the ``Date`` header.

    ``Date`` is rounded down to the second, so each sample underestimates the offset; the
    largest sample is the best estimate and errs on the safe side (resets look later).
    """

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self._wall_clock = wall_clock
        self._offset: float | None = None

    @property
    def offset(self) -> float:
        """Returns the estimated server-minus-local offset in seconds (0 before any sample)."""
        return self._offset or 0.0

    def observe(self, date_header: str | None) -> None:
        """Learns from the ``Date`` header of an answer just received."""
        if not date_header:
            return
        try:
            server_now = email.utils.parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError):
            return
        sample = server_now - self._wall_clock()
        if self._offset is None or sample > self._offset:
            self._offset = sample

    def seconds_until(self, server_epoch: float) -> float:
        """Returns how long from now (our clock) until a server unix time."""
        return server_epoch - self.offset - self._wall_clock()


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
        server_clock: ServerClock | None = None,
        burst_fraction: float = 0.5,
        reset_margin: float = 0.1,
        max_reset_margin: float = 2.0,
    ) -> None:
        self._clock = clock
        self._server_clock = server_clock if server_clock is not None else ServerClock()
        self._burst_fraction = burst_fraction
        self._reset_margin = reset_margin
        self._max_reset_margin = max_reset_margin
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_raw: float | None = None
        self._reset_at: float | None = None
        self._window_over_at = -math.inf
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

    @property
    def reset_margin(self) -> float:
        """Returns the seconds waited past a reset before the window is trusted to be new."""
        return self._reset_margin

    async def acquire(self, *, max_wait: float = math.inf) -> None:
        """Waits until one more request may be sent, then counts it as in flight.

        Raises WindowWaitTooLongError instead of sleeping past ``max_wait`` seconds.
        """
        deadline = self._clock() + max_wait
        while True:
            now = self._clock()
            wait, spent = self._wait_time(now)
            if not math.isinf(wait) and now + wait > deadline:
                if spent:
                    raise WindowWaitTooLongError(wait)
                wait = 0.0  # only smoothing would delay us: the budget allows sending now
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
            self._server_clock.observe(headers.get("date"))
            self._learn(headers, status)
        self._notify()

    def block_for(self, seconds: float) -> None:
        """Sends nothing for ``seconds`` (after a 429 or 503), then probes the window afresh."""
        now = self._clock()
        if now - self._window_over_at < _EARLY_PROBE_SECONDS:
            # We believed the window was over and were refused: resets here are rounded down.
            self._reset_margin = min(self._max_reset_margin, self._reset_margin + 0.5)
        self._blocked_until = max(self._blocked_until, now + max(0.0, seconds))
        self._forget_window()
        self._notify()

    def delay(self) -> float:
        """How long a request asked for now would wait before it is sent (inf: until an
        answer in flight tells the window)."""
        return self._wait_time(self._clock())[0]

    def seconds_until_reset(self) -> float | None:
        """Returns the time to the known window's reset, if one is known."""
        if self._reset_at is None:
            return None
        return max(0.0, self._reset_at + self._reset_margin - self._clock())

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _forget_window(self) -> None:
        self._limit = self._remaining = None
        self._reset_raw = self._reset_at = None

    def _wait_time(self, now: float) -> tuple[float, bool]:
        """Returns how long to wait before sending, and whether the budget is spent meanwhile."""
        if now < self._blocked_until:
            return self._blocked_until - now, True
        if self._unmetered:
            return 0.0, False
        if self._reset_at is not None and now >= self._reset_at + self._reset_margin:
            self._window_over_at = now
            self._forget_window()
        if self._remaining is None or self._reset_at is None:
            return (math.inf if self._probing else 0.0), False
        available = self._remaining - self._in_flight
        until_reset = self._reset_at + self._reset_margin - now
        if available <= 0:
            return until_reset, True
        if self._limit and available > self._limit * self._burst_fraction:
            return 0.0, False
        interval = until_reset / available
        return max(0.0, self._last_send + interval - now), False

    def _learn(self, headers: Mapping[str, str], status: int | None) -> None:
        limit = _header_number(headers, "x-rate-limit-limit")
        remaining = _header_number(headers, "x-rate-limit-remaining")
        reset_raw = _header_number(headers, "x-rate-limit-reset")
        if remaining is None or reset_raw is None:
            if limit is None and status is not None and status < 400 and self._remaining is None:
                self._unmetered = True  # this API does not meter: do not serialise on probes
            return
        self._unmetered = False
        now = self._clock()
        if reset_raw > _EPOCH_THRESHOLD:
            reset_at = now + self._server_clock.seconds_until(reset_raw)
        else:
            reset_at = now + reset_raw
        if reset_at + self._reset_margin <= now:
            return  # an answer from a window that is already over
        budget = int(remaining)
        if self._remaining is not None and reset_raw == self._reset_raw:
            budget = min(budget, self._remaining)  # answers may arrive out of order
        self._limit = int(limit) if limit is not None else self._limit
        self._remaining = max(0, budget)
        self._reset_raw = reset_raw
        self._reset_at = reset_at


class RateLimiters:
    """The limiters of every (client_id, company_id) this client talks to."""

    def __init__(self, factory: Callable[[ServerClock], CompanyLimiter] | None = None) -> None:
        self._server_clock = ServerClock()
        self._factory = factory or (lambda clock: CompanyLimiter(server_clock=clock))
        self._limiters: dict[tuple[str, int | None], CompanyLimiter] = {}

    def get(self, client_id: str, company_id: int | None) -> CompanyLimiter:
        """Returns the limiter shared by every task using this token against this company."""
        key = (client_id, company_id)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = self._factory(self._server_clock)
        return limiter


def hold_for_window(
    budget: RetryBudget, limiter: CompanyLimiter, response: httpx.Response, path: str
) -> None:
    """After a 429/503: holds every request to this company until Retry-After or the reset."""
    wait = parse_retry_after(response.headers.get("retry-after"))
    if wait is None:
        wait = limiter.seconds_until_reset()
    if wait is not None:
        # Every task holds off, even when this call gives up: the window is spent.
        limiter.block_for(wait)
        delay = budget.wait(wait)
        log.warning(
            "procore rate limit: holding requests",
            status=response.status_code,
            path=path,
            wait_seconds=round(wait, 1),
        )
    else:
        delay = budget.backoff()
        if delay is not None:
            limiter.block_for(delay)
    if delay is None:
        cls = ProcoreRateLimitError if response.status_code == 429 else ProcoreServerError
        raise cls(
            message_from_response(response),
            status=response.status_code,
            request_id=request_id_of(response),
            path=path,
            retry_after=wait,
        )
