"""The worker in a running service: cancel, 409 while running, metrics, taking turns."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from procore_sim.server import SimulatorServer
from tests.factories import RunningService, install_event, wait_until


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"heartbeat_seconds": 0.3, "streams": "projects,users,rfis,submittals,observations"}


def wait_for_status(service: RunningService, run_id: str, status: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.admin.get(f"/admin/v1/syncs/{run_id}").json()["status"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {status}")


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


class TestCancelAndConflict:
    def test_running_sync_gets_409_then_stops_at_its_next_page_on_cancel(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        sim.state.set_faults(latency_ms=150)
        assert service.callback(install_event(company_id)).status_code == 202
        run_id = service.latest_run_id(company_id)
        wait_for_status(service, run_id, "running")

        again = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
        assert again.status_code == 409, again.text
        assert again.json()["error"]["details"] == [{"run_id": run_id}]

        wait_until(lambda: service.admin.get(f"/admin/v1/syncs/{run_id}").json()["requests"] > 2)
        assert service.admin.post(f"/admin/v1/syncs/{run_id}/cancel").status_code == 202
        run = service.wait_for_run(run_id, timeout=15)
        assert run["status"] == "cancelled" and "checkpoints kept" in run["error"]
        assert run["requests"] > 0

        sim.state.set_faults()
        nxt = service.admin.post(
            f"/admin/v1/installations/{company_id}/syncs", json={"full_refresh": True}
        )
        assert nxt.status_code == 202
        whole = service.wait_for_run(nxt.json()["run_id"])
        assert whole["status"] == "succeeded"
        # Stopped at its next page: the cancelled run read only part of what a whole run reads.
        assert run["requests"] < whole["requests"]


class TestMetrics:
    def test_a_run_shows_up_in_the_alerts_metrics(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        company = str(company_id)
        counters = {
            "runs": ("connector_sync_runs_total", {"company_id": company, "status": "succeeded"}),
            "records": ("connector_sync_records_total", {"stream": "users"}),
            "ok": ("connector_procore_requests_total", {"company_id": company, "code": "200"}),
            "tokens": ("connector_procore_token_refreshes_total", {"result": "ok"}),
            "durations": ("connector_sync_run_duration_seconds_count", {"status": "succeeded"}),
        }
        # The registry is per process: compare before and after this test's run.
        before_text = service.admin.get("/metrics").text
        before = {
            key: metric(before_text, name, **labels) for key, (name, labels) in counters.items()
        }

        run = service.install_and_sync(company_id)
        assert run["status"] == "succeeded", run["error"]

        text = service.admin.get("/metrics").text
        delta = {
            key: metric(text, name, **labels) - before[key]
            for key, (name, labels) in counters.items()
        }
        assert delta["runs"] == 1 and delta["durations"] == 1
        assert delta["records"] == len(sim.state.records("users", company_id))
        assert delta["ok"] >= run["requests"] > 0
        assert delta["tokens"] >= 1
        period = metric(text, "connector_installation_schedule_period_seconds", company_id=company)
        assert period == 3600
        last = metric(text, "connector_sync_last_success_timestamp_seconds", company_id=company)
        assert last > time.time() - 60
        assert metric(text, "connector_sync_queue_depth") == 0
        assert metric(text, "connector_scheduler_lag_seconds") < 5
        assert metric(text, "connector_ready") == 1
