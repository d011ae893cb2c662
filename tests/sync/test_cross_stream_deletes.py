"""Issue 15 item 2: one stream's failure never blocks another stream's deletes."""

from __future__ import annotations

from typing import Any

import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import RunningService, query_rows


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig.lenient(companies=1, projects=2, records=6, seed=5)


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"streams": "projects,users,rfis", "full_listing_interval_seconds": 0}


def test_a_failed_stream_leaves_other_streams_deletes_applied(
    service: RunningService, sim: SimulatorServer, destination_url: str
) -> None:
    company_id = sim.state.company_ids()[0]
    assert service.install_and_sync(company_id)["status"] == "succeeded"
    user = sim.state.records("users", company_id)[0]
    sim.state.delete_record("users", user["id"])
    rfi_project = sim.state.project_ids(company_id)[0]
    rfi = sim.state.records("rfis", company_id, rfi_project)[0]
    sim.state.delete_record("rfis", rfi["id"])
    # Every RFI listing is refused (400: not retried), so the rfis stream fails.
    sim.state.set_faults(error_rate=1.0, error_status=400, path_prefix="/rest/v1.0/projects/")
    queued = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
    run = service.wait_for_run(queued.json()["run_id"])
    assert run["status"] == "failed" and "rfis" in run["error"], run
    assert run["streams"]["users"]["records_deleted"] == 1

    queries = {
        "users": "SELECT deleted_at FROM users WHERE company_id = :c AND id = :i",
        "rfis": "SELECT deleted_at FROM rfis WHERE company_id = :c AND id = :i",
    }

    def deleted_at(table: str, record_id: int) -> Any:
        [row] = query_rows(destination_url, queries[table], c=company_id, i=record_id)
        return row[0]

    assert deleted_at("users", user["id"]) is not None
    assert deleted_at("rfis", rfi["id"]) is None  # its own stream failed: nothing decided
    sim.state.set_faults()
    again = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
    assert service.wait_for_run(again.json()["run_id"])["status"] == "succeeded"
    assert deleted_at("rfis", rfi["id"]) is not None
