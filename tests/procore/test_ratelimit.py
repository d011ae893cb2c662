"""The pacing limiter on its own, with short windows given as seconds-from-now."""

from __future__ import annotations

import asyncio
import time

import httpx

from app.procore.ratelimit import CompanyLimiter


def window(limit: int, remaining: int, reset: float) -> httpx.Headers:
    return httpx.Headers({
        "X-Rate-Limit-Limit": str(limit),
        "X-Rate-Limit-Remaining": str(remaining),
        "X-Rate-Limit-Reset": str(reset),
    })


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
        limiter = make_limiter()
        await limiter.acquire()
        limiter.release(window(10, 0, 0.3))
        started = time.monotonic()
        await limiter.acquire()
        assert time.monotonic() - started >= 0.3

    async def test_in_flight_requests_count_against_remaining(self) -> None:
        limiter = make_limiter()
        await limiter.acquire()
        limiter.release(window(2, 2, 0.4))
        await limiter.acquire()
        await limiter.acquire()
        third = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0.3)  # two in flight, two remaining: must wait for the reset
        assert not third.done()
        limiter.release(None)
        limiter.release(None)
        await asyncio.wait_for(third, 1)

    async def test_low_budget_is_spread_until_reset(self) -> None:
        limiter = make_limiter()
        await limiter.acquire()
        limiter.release(window(10, 4, 0.8))  # below half: spread 4 over ~0.85 s
        sent: list[float] = []
        started = time.monotonic()
        for _ in range(3):
            await limiter.acquire()
            sent.append(time.monotonic() - started)
            limiter.release(None)
        assert sent[-1] >= 0.3
        assert sent[-1] < 0.9

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
