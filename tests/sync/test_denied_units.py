"""A (project, stream) that answers 403/404 is remembered and asked again a day later, not on
every run (Integration Health counts each 403/404)."""

from __future__ import annotations

from typing import Any

import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import RunningService, execute, query_rows


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(companies=1, projects=2, records=4, seed=9)


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"streams": "projects,rfis"}


def rfis_calls(sim: SimulatorServer, project_id: int) -> int:
    return len(sim.state.request_log(path_prefix=f"/rest/v1.0/projects/{project_id}/rfis"))


def sync(service: RunningService, company_id: int) -> dict[str, Any]:
    queued = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
    assert queued.status_code == 202, queued.text
    return service.wait_for_run(queued.json()["run_id"])


class TestDeniedUnits:
    def test_a_denied_unit_waits_a_day_then_is_asked_again(
        self, service: RunningService, sim: SimulatorServer, database_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        denied, allowed = sim.state.project_ids(company_id)
        # The RFI tool is disabled in one project: its RFI list answers 403.
        sim.state.set_faults(
            error_rate=1.0, error_status=403, path_prefix=f"/rest/v1.0/projects/{denied}/rfis"
        )
        first = service.install_and_sync(company_id)
        assert first["status"] == "succeeded", first
        assert "skipped" in (first["streams"]["rfis"].get("note") or "")
        assert rfis_calls(sim, denied) == 1
        before_allowed = rfis_calls(sim, allowed)
        for _ in range(2):
            again = sync(service, company_id)
            assert again["status"] == "succeeded"
        assert rfis_calls(sim, denied) == 1, "a denied unit was asked again on the next run"
        assert rfis_calls(sim, allowed) > before_allowed  # the other project is read each run
        rows = query_rows(
            database_url,
            "SELECT skip_until FROM stream_states WHERE stream = 'rfis' AND project_id = :p",
            p=denied,
        )
        assert rows and rows[0][0] is not None
        # A day passes (the tool is enabled meanwhile): the unit is asked again, and synced.
        sim.state.set_faults()
        execute(
            database_url,
            "UPDATE stream_states SET skip_until = :t WHERE stream = 'rfis' AND project_id = :p",
            t="2000-01-01 00:00:00",
            p=denied,
        )
        later = sync(service, company_id)
        assert later["status"] == "succeeded"
        assert rfis_calls(sim, denied) > 1  # asked again
        rows = query_rows(
            database_url,
            "SELECT skip_until FROM stream_states WHERE stream = 'rfis' AND project_id = :p",
            p=denied,
        )
        assert rows[0][0] is None
