"""The pacing limiter on its own, with short windows given as seconds-from-now."""

from __future__ import annotations

import asyncio
import email.utils
import time

import httpx
import pytest

from app.procore.ratelimit import CompanyLimiter, ServerClock, WindowWaitTooLongError


def window(limit: int, remaining: int, reset: float) -> httpx.Headers:
    return httpx.Headers(
        {
            "X-Rate-Limit-Limit": str(limit),
            "X-Rate-Limit-Remaining": str(remaining),
            "X-Rate-Limit-Reset": str(reset),
        }
    )


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_limiter() -> CompanyLimiter:
    return CompanyLimiter(reset_margin=0.05)


class TestCompanyLimiter:
    async def test_unknown_window_sends_one_probe_at_a_time(self) -> None:
        limiter = make_limiter()
        await limiter.acquire()
        second = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0.05)
        assert not second.done()
        limiter.release(window(10, 9, 5))
        await asyncio.wait_for(second, 1)
        assert limiter.in_flight == 1

    async def test_spent_window_waits_for_reset(self) -> None:
        clock = FakeClock()
        limiter = CompanyLimiter(clock=clock, reset_margin=0.05)
        await limiter.acquire()
        limiter.release(window(10, 0, 0.3))
        assert limiter.delay() == pytest.approx(0.35)
        with pytest.raises(WindowWaitTooLongError):
            await limiter.acquire(max_wait=0.1)
        clock.now += 0.36
        await asyncio.wait_for(limiter.acquire(max_wait=0), 1)

    async def test_in_flight_requests_count_against_remaining(self) -> None:
        clock = FakeClock()
        limiter = CompanyLimiter(clock=clock, reset_margin=0.05)
        await limiter.acquire()
        limiter.release(window(2, 2, 0.4))
        assert limiter.delay() == 0  # two of two left: a burst may go
        await limiter.acquire()
        # One in flight, so one left: the next one is spread over the time to the reset.
        assert limiter.delay() == pytest.approx(0.45)
        limiter.release(None)
        assert limiter.delay() == 0

    async def test_low_budget_is_spread_until_reset(self) -> None:
        clock = FakeClock()
        limiter = CompanyLimiter(clock=clock, reset_margin=0.05)
        await limiter.acquire()
        limiter.release(window(10, 4, 0.8))  # below half: spread 4 over 0.85 s
        # Neither a burst nor a wait for the reset: one quarter of the time left.
        assert limiter.delay() == pytest.approx(0.85 / 4)
        clock.now += 0.85 / 4
        await asyncio.wait_for(limiter.acquire(max_wait=0), 1)
        limiter.release(None)
        assert limiter.delay() == pytest.approx((0.85 - 0.85 / 4) / 4)

    async def test_stale_answer_cannot_raise_remaining(self) -> None:
        limiter = make_limiter()
        reset = time.time() + 30
        await limiter.acquire()
        limiter.release(window(10, 9, reset))
        await limiter.acquire()
        await limiter.acquire()
        limiter.release(window(10, 3, reset))
        limiter.release(window(10, 8, reset))  # older answer of the same window
        assert limiter.remaining == 3

    async def test_block_holds_every_request(self) -> None:
        limiter = make_limiter()
        limiter.block_for(0.3)
        started = time.monotonic()
        await limiter.acquire()
        assert time.monotonic() - started >= 0.29

    async def test_unmetered_api_is_not_serialised(self) -> None:
        limiter = make_limiter()
        await limiter.acquire()
        limiter.release(httpx.Headers(), 200)
        for _ in range(5):
            await asyncio.wait_for(limiter.acquire(), 0.1)

    async def test_spent_window_longer_than_the_caller_may_wait_raises(self) -> None:
        limiter = make_limiter()
        await limiter.acquire()
        limiter.release(window(10, 0, 60))
        with pytest.raises(WindowWaitTooLongError) as caught:
            await limiter.acquire(max_wait=5)
        assert caught.value.seconds > 59

    async def test_smoothing_never_turns_into_an_error(self) -> None:
        limiter = make_limiter()
        await limiter.acquire()
        limiter.release(window(10, 1, 600))  # one request left, spread over ten minutes
        await asyncio.wait_for(limiter.acquire(max_wait=5), 1)

    async def test_429_right_after_a_reset_widens_the_margin(self) -> None:
        limiter = make_limiter()
        await limiter.acquire()
        limiter.release(window(10, 0, 0.1))
        await limiter.acquire()  # the window is believed over: this is the probe
        before = limiter.reset_margin
        limiter.release(window(10, 0, 1))
        limiter.block_for(0.01)  # ...and it was refused
        assert limiter.reset_margin > before


class TestServerClock:
    def test_offset_is_the_largest_sample(self) -> None:
        now = [1_700_000_000.5]
        clock = ServerClock(wall_clock=lambda: now[0])
        clock.observe(email.utils.formatdate(1_700_000_003, usegmt=True))  # server 3 s ahead
        clock.observe(email.utils.formatdate(1_700_000_002, usegmt=True))  # a stale Date
        clock.observe("not a date")
        assert clock.offset == pytest.approx(2.5)
        assert clock.seconds_until(1_700_000_010) == pytest.approx(7.0)

    def test_no_date_means_our_own_clock(self) -> None:
        clock = ServerClock(wall_clock=lambda: 100.0)
        clock.observe(None)
        assert clock.seconds_until(110.0) == 10.0
