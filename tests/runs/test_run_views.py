"""Run views: summaries for lists, detail for one run, and no stream left `running`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.runs.progress import RunProgress, StreamStats
from procore_sim.server import SimulatorServer
from tests.factories import RunningService, install_event, wait_until


def progress_with(**statuses: str) -> RunProgress:
    return RunProgress(streams={name: StreamStats(status=s) for name, s in statuses.items()})


class TestSettle:
    @pytest.mark.parametrize(
        ("run_status", "running", "pending"),
        [
            ("failed", "interrupted", "not_started"),
            ("cancelled", "cancelled", "not_started"),
            ("queued", "paused", "pending"),
        ],
    )
    def test_an_ended_run_has_no_running_stream(
        self, run_status: str, running: str, pending: str
    ) -> None:
        progress = progress_with(projects="succeeded", rfis="running", users="pending")
        settled = progress.settle(run_status).streams
        assert [settled[n].status for n in ("projects", "rfis", "users")] == [
            "succeeded",
            running,
            pending,
        ]

    def test_a_running_run_is_shown_as_it_is(self) -> None:
        progress = progress_with(rfis="running", users="pending")
        assert progress.settle("running").streams["rfis"].status == "running"

    def test_an_interrupted_stream_says_why(self) -> None:
        stream = progress_with(rfis="running").settle("failed").streams["rfis"]
        assert stream.error == "the run ended before this stream finished"


def failed_run(service: RunningService, sim: SimulatorServer) -> tuple[int, dict[str, Any]]:
    """A first run that fails while reading projects: the app is not installed in Procore."""
    company_id = sim.state.company_ids()[0]
    sim.state.uninstall_company(company_id)
    assert service.callback(install_event(company_id)).status_code == 202
    run = service.wait_for_run(service.latest_run_id(company_id))
    assert run["status"] == "failed", run
    return company_id, run


class TestFailedRun:
    def test_no_stream_of_a_failed_run_is_shown_running(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id, run = failed_run(service, sim)
        assert run["streams"], run
        assert all(s["status"] != "running" for s in run["streams"].values()), run
        listed = service.admin.get(
            "/admin/v1/syncs", params={"company_id": company_id, "view": "full"}
        ).json()
        assert all(s["status"] != "running" for s in listed[0]["streams"].values())
        assert listed[0]["failed_streams"] == ["projects"]


class TestSummaries:
    def test_lists_are_summaries_and_one_run_has_the_detail(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[1]
        assert service.callback(install_event(company_id)).status_code == 202
        run_id = service.latest_run_id(company_id)
        detail = service.wait_for_run(run_id)
        assert detail["status"] == "succeeded"
        wait_until(lambda: service.admin.get("/admin/v1/syncs").json()[0]["status"] == "succeeded")
        summary = service.admin.get("/admin/v1/syncs").json()[0]
        full = service.admin.get("/admin/v1/syncs", params={"view": "full"}).json()[0]
        assert "streams" not in summary and "streams" in full and "streams" in detail
        assert set(summary) < set(full) == set(detail)
        for key in ("run_id", "status", "records", "requests", "queued_at", "error"):
            assert summary[key] == detail[key]
        assert len(json.dumps(summary)) * 3 < len(json.dumps(detail))
        page = service.admin.get("/admin/v1/syncs", params={"limit": 1, "view": "full"})
        assert "view=full" in page.headers["link"]
        bad = service.admin.get("/admin/v1/syncs", params={"view": "everything"})
        assert bad.status_code == 400
