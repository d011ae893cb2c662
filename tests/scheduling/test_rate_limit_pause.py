"""A spent Procore window pauses a run with its checkpoints; it resumes after the reset."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import RunningService, install_event, query_rows


@pytest.fixture
def sim_config() -> SimulatorConfig:
    # A 6-second "hourly" window of 5 requests: longer than the client may wait in place.
    return SimulatorConfig.lenient(
        companies=1,
        projects=2,
        records=12,
        seed=3,
        hourly_limit=5,
        hourly_window_seconds=6,
    )


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"streams": "projects,rfis", "per_page": 5, "procore_max_wait_seconds": 1}


class TestSpentWindow:
    def test_run_pauses_until_the_window_resets_then_resumes(
        self,
        service: RunningService,
        sim: SimulatorServer,
        capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.WARNING)
        company_id = sim.state.company_ids()[0]
        assert service.callback(install_event(company_id)).status_code == 202
        run = service.wait_for_run(service.latest_run_id(company_id), timeout=90)
        assert run["status"] == "succeeded", run["error"]

        log = sim.state.request_log(path_prefix="/rest/")
        assert len(log) > 5, "the run fitted in one window: nothing was tested"
        assert not [e for e in log if e["status"] == 429]
        times = sorted(e["time"] for e in log)
        assert max(b - a for a, b in itertools.pairwise(times)) >= 1.0
        logged = "".join(capfd.readouterr()) + caplog.text
        assert "the run pauses" in logged  # queued again, not waited out
        expected = sum(
            len(sim.state.records("rfis", company_id, p)) for p in sim.state.project_ids(company_id)
        )
        assert run["streams"]["rfis"]["records_written"] == expected


class TestDeletesAcrossAPause:
    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        return SimulatorConfig.lenient(
            companies=1, projects=2, records=12, seed=3, hourly_window_seconds=6
        )

    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {
            "streams": "projects,users,rfis",
            "per_page": 5,
            "procore_max_wait_seconds": 1,
            "full_listing_interval_seconds": 0,
        }

    def test_deletes_found_before_or_across_a_pause_are_applied_when_the_run_ends(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        user = sim.state.records("users", company_id)[0]
        sim.state.delete_record("users", user["id"])
        sim.state.set_limits(hourly=4)  # projects and users fit; rfis make the run pause
        queued = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
        run = service.wait_for_run(queued.json()["run_id"], timeout=90)
        assert run["status"] == "succeeded", run["error"]

        def deleted_at() -> Any:
            [row] = query_rows(
                destination_url,
                "SELECT deleted_at FROM users WHERE company_id = :c AND id = :i",
                c=company_id,
                i=user["id"],
            )
            return row[0]

        # Units run concurrently, so the users listing may be split by the pause: its
        # checkpoint carries the ids read before it, so the resumed listing still decides.
        assert run["streams"]["users"]["records_deleted"] == 1
        assert deleted_at() is not None
        runs = service.admin.get(
            "/admin/v1/syncs", params={"company_id": company_id, "view": "full", "limit": 10}
        ).json()
        assert sum(r["streams"].get("users", {}).get("records_deleted", 0) for r in runs) == 1
