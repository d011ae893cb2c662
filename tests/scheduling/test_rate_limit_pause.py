"""A spent Procore window pauses a run with its checkpoints; it resumes after the reset."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import RunningService, install_event


@pytest.fixture
def sim_config() -> SimulatorConfig:
    # A 6-second "hourly" window of 5 requests: longer than the client may wait in place.
    return SimulatorConfig(
        companies=1, projects=2, records=12, seed=3, hourly_limit=5, hourly_window_seconds=6
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
