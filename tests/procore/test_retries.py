"""Retries against the simulator: 5xx, dropped connections, timeouts, 503 outages; no retry on
403/404; AppNotConnectedError; Integration Health counters."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.procore import (
    AppNotConnectedError,
    AppNotInstalledError,
    ProcoreAuthError,
    ProcoreForbiddenError,
    ProcoreNetworkError,
    ProcoreNotFoundError,
    ProcoreServerError,
    RequestStats,
    make_http_client,
)
from tests.procore.simulated import (
    CREDS,
    api_log,
    first_project,
    make_client,
    make_sim,
    rfis_path,
    token_log,
)


class TestRetried:
    async def test_listing_survives_random_5xx(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            sim.state.set_faults(error_rate=0.3, error_status=502, path_prefix="/rest/")
            client = make_client(sim, per_page=5, max_attempts=8)
            stats = RequestStats()
            records = [
                r
                async for p in client.paginate(
                    CREDS, rfis_path(project_id), company_id=company_id, stats=stats
                )
                for r in p.records
            ]
            assert records == sim.state.records("rfis", company_id, project_id)
            assert stats.statuses.get(502, 0) > 0
            assert stats.requests == 10 + stats.statuses[502]

    async def test_listing_survives_dropped_connections(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            sim.state.set_faults(drop_rate=0.3)  # token requests too
            client = make_client(sim, per_page=5, max_attempts=8)
            stats = RequestStats()
            records = [
                r
                async for p in client.paginate(
                    CREDS, rfis_path(project_id), company_id=company_id, stats=stats
                )
                for r in p.records
            ]
            assert records == sim.state.records("rfis", company_id, project_id)
            assert stats.network_errors > 0
            assert stats.requests == 10 + stats.network_errors

    async def test_persistent_5xx_stops_after_max_attempts(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            sim.state.set_faults(error_rate=1.0, error_status=500, path_prefix="/rest/")
            client = make_client(sim, max_attempts=4)
            with pytest.raises(ProcoreServerError) as caught:
                await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            assert caught.value.status == 500
            assert len(api_log(sim)) == 4

    async def test_retry_time_is_bounded(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            sim.state.set_faults(error_rate=1.0, error_status=500, path_prefix="/rest/")
            client = make_client(
                sim,
                max_attempts=100,
                max_retry_seconds=0.5,
                retry_base_delay=0.1,
                retry_max_delay=0.2,
            )
            started = time.monotonic()
            with pytest.raises(ProcoreServerError):
                await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            assert time.monotonic() - started < 1.0

    async def test_503_outage_waits_for_retry_after(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim)
            await client.check_credentials(CREDS)
            sim.state.set_faults(unavailable=True, retry_after=1, path_prefix="/rest/")

            async def recover() -> None:
                await asyncio.sleep(1.5)
                sim.state.set_faults()

            started = time.monotonic()
            _, answer = await asyncio.gather(
                recover(), client.get(CREDS, rfis_path(project_id), company_id=company_id)
            )
            assert isinstance(answer, list)
            statuses = [e["status"] for e in api_log(sim)]
            assert statuses == [503, 503, 200]  # one request per Retry-After second
            assert time.monotonic() - started >= 1.5

    async def test_timeouts_are_retried_then_raised(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim, max_attempts=2, http=make_http_client(read_timeout=0.2))
            await client.check_credentials(CREDS)
            sim.state.set_faults(slow_headers_ms=500, path_prefix="/rest/")
            with pytest.raises(ProcoreNetworkError, match="ReadTimeout"):
                await client.get(CREDS, rfis_path(project_id), company_id=company_id)


class TestNotRetried:
    async def test_403_is_not_retried(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            sim.state.set_project_permitted(company_id, project_id, False)
            client = make_client(sim)
            with pytest.raises(ProcoreForbiddenError) as caught:
                await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            assert not isinstance(caught.value, AppNotConnectedError)
            assert "access" in caught.value.message
            assert len(api_log(sim)) == 1

    async def test_404_is_not_retried(self) -> None:
        with make_sim() as sim:
            company_id = sim.state.company_ids()[0]
            other_project = sim.state.project_ids(sim.state.company_ids()[1])[0]
            client = make_client(sim)
            with pytest.raises(ProcoreNotFoundError) as caught:
                await client.get(CREDS, rfis_path(other_project), company_id=company_id)
            assert caught.value.status == 404
            assert caught.value.path == rfis_path(other_project)
            assert len(api_log(sim)) == 1

    async def test_uninstalled_company_raises_app_not_connected(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            sim.state.uninstall_company(company_id)
            client = make_client(sim)
            with pytest.raises(AppNotConnectedError) as caught:
                await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            assert caught.value.status == 403
            assert "not connected" in caught.value.message
            assert len(api_log(sim)) == 1

    async def test_401_to_a_fresh_token_means_not_installed(self) -> None:
        with make_sim(token_lifetime=0) as sim:  # every token is refused from birth
            company_id, project_id = first_project(sim)
            client = make_client(sim)
            with pytest.raises(AppNotInstalledError) as caught:
                await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            assert caught.value.status == 401
            assert isinstance(caught.value, ProcoreAuthError | AppNotConnectedError)
            # one 401 and no second token: a fresh token refused means "not installed"
            assert [e["status"] for e in api_log(sim)] == [401]
            assert len(token_log(sim)) == 1


class TestHealthCounters:
    async def test_counters_match_what_procore_saw(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            other_project = sim.state.project_ids(sim.state.company_ids()[1])[0]
            client = make_client(sim, per_page=10)
            async for _ in client.paginate(CREDS, rfis_path(project_id), company_id=company_id):
                pass
            with pytest.raises(ProcoreNotFoundError):
                await client.get(CREDS, rfis_path(other_project), company_id=company_id)
            sim.state.expire_tokens()
            await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            await client.list_companies(CREDS)
            counters = client.health.drain(company_id)
            assert counters == {
                "401": 1,
                "403": 0,
                "404": 1,
                "429": 0,
                "missing_company_header": 0,
                "requests": len(api_log(sim, company_id=company_id)),
            }
            assert client.health.snapshot(company_id)["requests"] == 0
            assert client.health.snapshot(None)["missing_company_header"] == 0
