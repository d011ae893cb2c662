"""Pacing against the simulator's spike window: no 429 while listing, Retry-After honoured."""

from __future__ import annotations

import asyncio
import time

import httpx

from app.procore import ProcoreRateLimitError, RequestStats
from tests.procore.simulated import (
    CREDS,
    api_log,
    clear_log,
    first_project,
    make_client,
    make_sim,
    rfis_path,
)


class TestPacing:
    async def test_tight_spike_limit_gives_no_429_while_listing(self) -> None:
        with make_sim(records=12) as sim:
            sim.state.set_limits(spike=15, spike_window_seconds=2)
            company_id = sim.state.company_ids()[0]
            client = make_client(sim, per_page=1)
            stats = RequestStats()

            async def listing(project_id: int) -> int:
                count = 0
                async for page in client.paginate(
                    CREDS, rfis_path(project_id), company_id=company_id, stats=stats
                ):
                    count += len(page.records)
                return count

            projects = sim.state.project_ids(company_id)
            counts = await asyncio.gather(*(listing(p) for p in projects))  # 36 requests
            assert counts == [12] * len(projects)
            assert api_log(sim, status=429) == []
            assert stats.statuses == {200: 36}
            assert client.health.snapshot(company_id)["429"] == 0

    async def test_budget_is_per_company(self) -> None:
        with make_sim(records=10) as sim:
            sim.state.set_limits(spike=10, spike_window_seconds=2)
            client = make_client(sim, per_page=1)
            started = time.monotonic()

            async def listing(company_id: int) -> None:
                project_id = sim.state.project_ids(company_id)[0]
                async for _ in client.paginate(CREDS, rfis_path(project_id), company_id=company_id):
                    pass

            await asyncio.gather(*(listing(c) for c in sim.state.company_ids()))
            assert api_log(sim, status=429) == []
            assert time.monotonic() - started < 6  # two companies paced side by side

    async def test_429_waits_for_retry_after_before_the_next_request(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            sim.state.set_limits(spike=3, spike_window_seconds=2)
            client = make_client(sim)
            # someone else using the same token spends the window behind the client's back
            token = sim.state.issue_token(CREDS.client_id)["access_token"]
            headers = {"Authorization": f"Bearer {token}", "Procore-Company-Id": str(company_id)}
            async with httpx.AsyncClient(base_url=sim.url) as other:
                for _ in range(3):
                    await other.get(rfis_path(project_id), headers=headers)
            clear_log(sim)
            await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            log = api_log(sim)
            assert [e["status"] for e in log] == [429, 200]
            assert log[1]["time"] - log[0]["time"] >= 0.9  # Retry-After is whole seconds
            assert client.health.snapshot(company_id)["429"] == 1


class TestSpentHourlyWindow:
    async def test_spent_hour_raises_at_once_instead_of_sleeping(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            sim.state.set_limits(hourly=3)
            client = make_client(sim)
            for _ in range(3):
                await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            started = time.monotonic()
            results = await asyncio.gather(
                *(
                    client.get(CREDS, rfis_path(project_id), company_id=company_id)
                    for _ in range(10)
                ),
                return_exceptions=True,
            )
            assert time.monotonic() - started < 1
            assert all(isinstance(r, ProcoreRateLimitError) for r in results)
            error = results[0]
            assert isinstance(error, ProcoreRateLimitError)
            assert error.retry_after is not None and error.retry_after > 3000
            assert len(api_log(sim)) == 3  # nothing sent into the spent window

    async def test_429_for_a_long_window_blocks_every_task(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            sim.state.set_limits(hourly=2)
            client = make_client(sim)
            token = sim.state.issue_token(CREDS.client_id)["access_token"]
            headers = {"Authorization": f"Bearer {token}", "Procore-Company-Id": str(company_id)}
            await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            async with httpx.AsyncClient(base_url=sim.url) as other:
                await other.get(rfis_path(project_id), headers=headers)
            clear_log(sim)
            results = await asyncio.gather(
                *(
                    client.get(CREDS, rfis_path(project_id), company_id=company_id)
                    for _ in range(10)
                ),
                return_exceptions=True,
            )
            assert all(isinstance(r, ProcoreRateLimitError) for r in results)
            assert len(api_log(sim, status=429)) == 1


class TestConcurrentPacing:
    async def test_many_tasks_share_one_budget(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            sim.state.set_limits(spike=8, spike_window_seconds=1)
            client = make_client(sim)
            await asyncio.gather(
                *(
                    client.get(
                        CREDS, rfis_path(project_id), company_id=company_id, params={"per_page": 1}
                    )
                    for _ in range(30)
                )
            )
            assert api_log(sim, status=429) == []
            assert len(api_log(sim, status=200)) == 30
