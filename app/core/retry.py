"""The one retry policy of outgoing HTTP (Procore and HTTP destinations): exponential backoff
with full jitter, bounded by attempts and total time, and the one `Retry-After` parser."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# Answers worth another attempt; 429 and 503 additionally honour Retry-After.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_retryable_status(status: int) -> bool:
    """Tells whether an answer with this status may succeed if sent again."""
    return status in RETRYABLE_STATUSES or status >= 500


def is_retryable_exception(exc: BaseException) -> bool:
    """Tells whether a transport failure (timeout, dropped connection) may be retried."""
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Returns the seconds a ``Retry-After`` header (seconds or HTTP date) asks to wait."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts and how much time one logical call may spend on retries."""

    max_attempts: int = 6
    max_seconds: float = 300.0
    base_delay: float = 0.5
    max_delay: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def start(self, clock: Callable[[], float] = time.monotonic) -> RetryBudget:
        """Opens the budget of one logical call; the first attempt is already counted."""
        return RetryBudget(self, clock)


class RetryBudget:
    """The attempts and time left to one logical call."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._deadline = clock() + policy.max_seconds
        self.attempts = 1

    def seconds_left(self) -> float:
        """Returns the time this call may still spend."""
        return max(0.0, self._deadline - self._clock())

    def backoff(self) -> float | None:
        """Returns the jittered delay before the next attempt, or None when the budget is spent."""
        cap = min(self._policy.max_delay, self._policy.base_delay * 2 ** (self.attempts - 1))
        return self.wait(self._policy.rng.uniform(0, cap))

    def wait(self, delay: float) -> float | None:
        """Spends one attempt on a ``delay`` wait; None if that exceeds the budget."""
        if self.attempts >= self._policy.max_attempts:
            return None
        if self._clock() + delay > self._deadline:
            return None
        self.attempts += 1
        return delay


async def backoff_or_raise(budget: RetryBudget, error: BaseException, log: Any) -> None:
    """Sleeps the budget's next backoff before another attempt, or raises `error` when the
    budget is spent (attempts or deadline)."""
    delay = budget.backoff()
    if delay is None:
        raise error
    log.info(
        "request failed, retrying",
        delay_seconds=round(delay, 2),
        attempt=budget.attempts,
        error=str(error),
    )
    await asyncio.sleep(delay)
