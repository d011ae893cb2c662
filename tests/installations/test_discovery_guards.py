"""Discovery against the simulator: the listing's parameters, held listings, racing changes,
disconnected companies and their probes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.core.database import unit_of_work, utcnow
from app.core.metrics import REGISTRY
from app.core.settings import Settings
from app.installations import disconnects, discovery, repository, service
from app.installations.discovery import DiscoveryResult, discover, held_reason
from app.runs import queue
from app.runtime import Runtime
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.installations.test_discovery import installation
from tests.installations.test_discovery import rt as rt


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Four installed companies: enough to drop one (normal) or three (a mass drop)."""
    return SimulatorConfig(companies=4, projects=1, records=3, seed=5)


def companies_requests(sim: SimulatorServer) -> list[dict[str, object]]:
    return sim.state.request_log(path_prefix="/rest/v1.0/companies")


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestListing:
    def test_default_interval_is_sixty_seconds(self) -> None:
        assert Settings(_env_file=None).discovery_interval_seconds == 60  # type: ignore[call-arg]

    async def test_sends_company_header_and_free_companies_and_pages_through(
        self, rt: Runtime, sim: SimulatorServer
    ) -> None:
        rt.procore.per_page = 1  # one company a page: the whole list takes four pages
        first = await discover(rt)
        assert first.listed == 4 and len(first.installed) == 4
        sim.state.clear_request_log()
        await discover(rt)
        sent = companies_requests(sim)
        assert [entry["query"]["page"] for entry in sent] == ["1", "2", "3", "4"]  # type: ignore[index]
        assert all(e["query"]["include_free_companies"] == "true" for e in sent)  # type: ignore[index]
        smallest = str(min(sim.state.company_ids()))
        assert {entry["company_header"] for entry in sent} == {smallest}

    async def test_a_stale_header_company_cannot_stop_discovery(
        self, rt: Runtime, sim: SimulatorServer
    ) -> None:
        await discover(rt)
        smallest = min(sim.state.company_ids())
        sim.state.uninstall_company(smallest)  # the header company itself leaves
        await discover(rt)
        result = await discover(rt)
        assert result.uninstalled == [smallest]


class TestHeldListings:
    def test_held_reason(self) -> None:
        assert held_reason(0, 5, 5) == "the /companies listing was empty"
        assert held_reason(4, 4, 2) is None  # exactly half is not more than half
        assert held_reason(1, 4, 3) is not None
        assert held_reason(3, 0, 0) is None
        assert held_reason(0, 0, 0) is None  # nothing installed yet: nothing to protect

    async def test_empty_listing_uninstalls_nobody_and_shows_until_normal(
        self, rt: Runtime, sim: SimulatorServer
    ) -> None:
        await discover(rt)
        ids = sim.state.company_ids()
        held_before = metric("connector_discovery_passes_total", outcome="held")
        for company_id in ids:
            sim.state.uninstall_company(company_id)
        for _ in range(3):
            result = await discover(rt)
            assert result.held == "the /companies listing was empty"
            assert result.uninstalled == []
        for company_id in ids:
            assert (await installation(rt, company_id)).status == "active"
            assert (await installation(rt, company_id)).absent_listings == 0
        assert metric("connector_discovery_passes_total", outcome="held") == held_before + 3
        assert metric("connector_discovery_held") == 1
        shown = await discovery.held_listing(rt)
        assert shown is not None and shown["reason"] == "the /companies listing was empty"
        for company_id in ids:
            sim.state.install_company(company_id)
        normal = await discover(rt)
        assert normal.held is None
        assert await discovery.held_listing(rt) is None
        assert metric("connector_discovery_held") == 0

    async def test_listing_dropping_more_than_half_uninstalls_nobody(
        self, rt: Runtime, sim: SimulatorServer
    ) -> None:
        await discover(rt)
        ids = sim.state.company_ids()
        for company_id in ids[:3]:
            sim.state.uninstall_company(company_id)
        for _ in range(3):
            result = await discover(rt)
            assert result.held is not None and "3 of 4" in result.held
            assert result.uninstalled == []
        assert all([(await installation(rt, c)).status == "active" for c in ids])

    async def test_change_after_the_listing_began_is_not_judged_by_it(
        self, rt: Runtime, sim: SimulatorServer
    ) -> None:
        await discover(rt)
        gone = sim.state.company_ids()[0]
        sim.state.uninstall_company(gone)
        creds = service.app_credentials(rt)
        listed = {c: "" for c in sim.state.company_ids()[1:]}
        for _ in range(3):
            began = utcnow()
            async with unit_of_work(rt.sessions) as session:
                # The onboarding hook re-sends the company while this listing is under way.
                await service.install(session, rt, company_id=gone, company_name="Back Again")
            result = DiscoveryResult()
            async with unit_of_work(rt.sessions) as session:
                await discovery._reconcile(session, rt, creds, listed, began, result)
            assert result.uninstalled == []
        inst = await installation(rt, gone)
        assert (inst.status, inst.absent_listings) == ("active", 0)
        # The same listings with a start after the change do count: two uninstall it.
        for _ in range(2):
            result = DiscoveryResult()
            async with unit_of_work(rt.sessions) as session:
                await discovery._reconcile(session, rt, creds, listed, utcnow(), result)
        assert result.uninstalled == [gone]


class TestDisconnected:
    def test_probe_interval_starts_at_one_pass_and_doubles_to_hourly(self) -> None:
        assert disconnects.first_probe_interval(60) == 60
        steps = [60]
        while steps[-1] < 3600:
            steps.append(disconnects.next_probe_interval(steps[-1], 60))
        assert steps == [60, 120, 240, 480, 960, 1920, 3600]
        assert disconnects.next_probe_interval(3600, 60) == 3600
        assert disconnects.first_probe_interval(0) == 3600  # discovery off: hourly

    async def test_disconnected_company_is_probed_with_growing_gaps_then_reconnects(
        self, rt: Runtime, sim: SimulatorServer
    ) -> None:
        await discover(rt)
        company_id = sim.state.company_ids()[0]
        sim.state.disconnect_company(company_id)
        async with unit_of_work(rt.sessions) as session:
            await queue.cancel_for_company(session, company_id, reason="test")
            await service.mark_disconnected(session, rt, company_id, "403 not connected")
        inst = await installation(rt, company_id)
        assert (inst.status, inst.next_run_at) == ("disconnected", None)
        assert inst.probe_interval_seconds == 3600  # discovery is off in this runtime
        sim.state.clear_request_log()
        not_due = await discover(rt)  # the probe is not due yet: the company is left alone
        assert not_due.still_disconnected == [] and not_due.uninstalled == []
        assert sim.state.request_log(company_id=company_id) == []
        intervals = []
        for _ in range(2):
            await make_probe_due(rt, company_id)
            result = await discover(rt)
            assert result.still_disconnected == [company_id]
            intervals.append((await installation(rt, company_id)).probe_interval_seconds)
        assert intervals == [3600, 3600]  # capped at hourly
        assert len(sim.state.request_log(company_id=company_id, status=403)) == 2
        sim.state.install_company(company_id)  # the admin reconnects the app
        await make_probe_due(rt, company_id)
        back = await discover(rt)
        assert back.reconnected == [company_id]
        inst = await installation(rt, company_id)
        assert (inst.status, inst.probe_at) == ("active", None)
        assert inst.next_run_at is not None
        async with unit_of_work(rt.sessions) as session:
            run = await queue.active_run(session, company_id)
        assert run is not None and run.trigger == "reconnect" and not run.full_refresh

    async def test_disconnected_company_that_leaves_the_list_is_uninstalled(
        self, rt: Runtime, sim: SimulatorServer
    ) -> None:
        await discover(rt)
        company_id = sim.state.company_ids()[0]
        async with unit_of_work(rt.sessions) as session:
            await service.mark_disconnected(session, rt, company_id, "403 not connected")
        sim.state.uninstall_company(company_id)
        await discover(rt)
        result = await discover(rt)
        assert result.uninstalled == [company_id]
        assert (await installation(rt, company_id)).status == "uninstalled"


async def make_probe_due(rt: Runtime, company_id: int) -> None:
    """Moves a disconnected company's probe time to now (time passing, without sleeping)."""
    async with unit_of_work(rt.sessions) as session:
        inst = await repository.get(session, company_id, for_update=True)
        assert inst is not None
        inst.probe_at = utcnow() - timedelta(seconds=1)
