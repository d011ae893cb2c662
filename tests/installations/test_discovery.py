"""Discovery against the simulator: /companies is the source of truth of installations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.core.database import unit_of_work
from app.core.migrations import upgrade_to_head
from app.credentials import service as secrets
from app.credentials.models import SecretKind
from app.installations import repository, service
from app.installations.discovery import discover
from app.installations.models import Installation
from app.runs import queue
from app.runtime import Runtime, build_runtime
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import make_settings


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Three installed companies, so one leaving is a normal listing (not a mass drop)."""
    return SimulatorConfig(companies=3, projects=2, records=12, seed=3)


@pytest.fixture
async def rt(
    sim: SimulatorServer, sim_config: SimulatorConfig, database_url: str, destination_url: str
) -> AsyncIterator[Runtime]:
    """A runtime (no scheduler, no worker) pointed at the simulator."""
    settings = make_settings(
        database_url=database_url,
        procore_api_url=sim.url,
        procore_login_url=sim.url,
        client_id=sim_config.client_id,
        client_secret=sim_config.client_secret,
        destination_url=destination_url,
        schedule="every 15m",
        streams="projects,rfis",
    )
    await asyncio.to_thread(upgrade_to_head, database_url)
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        await runtime.aclose()


async def installation(rt: Runtime, company_id: int) -> Installation:
    async with unit_of_work(rt.sessions) as session:
        inst = await repository.get(session, company_id)
    assert inst is not None
    return inst


def calls_to(sim: SimulatorServer, company_id: int) -> int:
    return len(sim.state.request_log(company_id=company_id))


class TestDiscovery:
    async def test_new_companies_get_installations_with_the_defaults(
        self, rt: Runtime, sim: SimulatorServer, destination_url: str
    ) -> None:
        result = await discover(rt)
        assert sorted(result.installed) == sim.state.company_ids()
        assert result.uninstalled == []
        for company_id in sim.state.company_ids():
            inst = await installation(rt, company_id)
            assert (inst.status, inst.source) == ("active", "discovery")
            assert (inst.schedule, inst.streams) == ("every 15m", "projects,rfis")
            assert inst.company_name
            async with unit_of_work(rt.sessions) as session:
                url = await secrets.get_secret(
                    session, rt.keyring, company_id, SecretKind.destination_url
                )
                run = await queue.active_run(session, company_id)
            assert url == destination_url
            assert run is not None and run.full_refresh and run.trigger == "install"

    async def test_a_second_reconcile_changes_nothing(self, rt: Runtime) -> None:
        await discover(rt)
        again = await discover(rt)
        assert again.installed == again.uninstalled == []

    async def test_vanished_company_is_uninstalled_after_two_listings_and_returns(
        self, rt: Runtime, sim: SimulatorServer
    ) -> None:
        gone, stays, third = sim.state.company_ids()
        await discover(rt)
        sim.state.uninstall_company(gone)
        first = await discover(rt)
        assert first.uninstalled == [] and first.held is None
        assert (await installation(rt, gone)).status == "active"  # one absence is not enough
        second = await discover(rt)
        assert second.uninstalled == [gone]
        inst = await installation(rt, gone)
        assert inst.status == "uninstalled"
        assert inst.status_reason == service.REASON_LEFT_COMPANIES
        assert inst.next_run_at is None
        assert (await installation(rt, stays)).status == "active"
        assert (await installation(rt, third)).status == "active"
        async with unit_of_work(rt.sessions) as session:
            assert await queue.active_run(session, gone) is None  # the queued sync is cancelled
        sim.state.install_company(gone)
        back = await discover(rt)
        assert back.installed == [gone]
        assert (await installation(rt, gone)).status == "active"

    async def test_one_absence_then_listed_again_starts_counting_afresh(
        self, rt: Runtime, sim: SimulatorServer
    ) -> None:
        flaky = sim.state.company_ids()[0]
        await discover(rt)
        for _ in range(3):
            sim.state.uninstall_company(flaky)
            await discover(rt)
            sim.state.install_company(flaky)
            await discover(rt)
        inst = await installation(rt, flaky)
        assert (inst.status, inst.absent_listings) == ("active", 0)

    async def test_listed_company_is_not_probed_while_active(
        self, rt: Runtime, sim: SimulatorServer
    ) -> None:
        await discover(rt)
        sim.state.clear_request_log()
        await discover(rt)
        paths = {entry["path"] for entry in sim.state.request_log(path_prefix="/rest/")}
        assert paths == {"/rest/v1.0/companies"}, "a pass is one listing, nothing else"

    async def test_installation_on_its_own_credentials_is_not_judged_by_the_app_list(
        self, rt: Runtime, sim: SimulatorServer
    ) -> None:
        outsider = 777_000_111  # not in the app's /companies (it installed another client id)
        async with unit_of_work(rt.sessions) as session:
            await service.install(
                session,
                rt,
                company_id=outsider,
                company_name="Own Pair Inc",
                client_id="their-own-client",
                client_secret="their-own-secret",
            )
        result = await discover(rt)
        assert outsider not in result.uninstalled
        assert (await installation(rt, outsider)).status == "active"
