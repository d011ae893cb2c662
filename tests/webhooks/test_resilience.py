"""Outages and restarts: redelivery after the receiver was down, stored events applied after a
restart, events waiting for a running sync, and runs yielding to events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.server_thread import free_port
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.webhooks.conftest import HookedService, events, hooked_settings, rows, wait_for


@pytest.fixture
def setup(
    sim: SimulatorServer, database_url: str, destination_url: str, sim_config: SimulatorConfig
) -> tuple[int, Any]:
    """A port and a settings factory, to start and stop the same service (same database)."""
    port = free_port()

    def settings(**overrides: Any) -> Any:
        return hooked_settings(sim, database_url, destination_url, port, sim_config, **overrides)

    return port, settings


def subject(url: str, company_id: int, record_id: int) -> str | None:
    row = rows(url, "rfis", company_id).get(record_id)
    return None if row is None else str(json.loads(row["data"])["subject"])


class TestOutage:
    def test_deliveries_missed_while_down_arrive_again_and_land(
        self,
        sim: SimulatorServer,
        setup: tuple[int, Any],
        destination_url: str,
        database_url: str,
    ) -> None:
        port, settings = setup
        company_id = sim.state.company_ids()[0]
        project_id = sim.state.project_ids(company_id)[0]
        with HookedService(settings(), port) as service:
            assert service.install(company_id)["status"] == "succeeded"
            service.settled(company_id)
        rfi = sim.state.records("rfis", company_id, project_id)[0]
        sim.state.update_record("rfis", rfi["id"], {"subject": "changed while down"})
        hub = sim.state.webhooks
        wait_for(
            lambda: any(d["outcome"] == "failed" for d in hub.deliveries),
            message="a failed delivery (connection refused)",
        )
        assert subject(destination_url, company_id, rfi["id"]) != "changed while down"
        with HookedService(settings(), port) as service:
            hub.release_pauses()  # Procore's backoff ends; the same event comes again
            wait_for(
                lambda: subject(destination_url, company_id, rfi["id"]) == "changed while down",
                message="the change after redelivery",
            )
            service.settled(company_id)
        stored = events(database_url, company_id)
        assert [(e[1], e[2], e[6]) for e in stored] == [("rfis", rfi["id"], "applied")]
        outcomes = [d["outcome"] for d in hub.deliveries if d["event"]["resource_id"] == rfi["id"]]
        assert outcomes[0] == "failed" and outcomes[-1] == "ok"


class TestRestart:
    def test_stored_events_not_yet_applied_are_applied_after_a_restart(
        self,
        sim: SimulatorServer,
        setup: tuple[int, Any],
        destination_url: str,
        database_url: str,
    ) -> None:
        port, settings = setup
        company_id = sim.state.company_ids()[0]
        project_id = sim.state.project_ids(company_id)[1]
        rfi = sim.state.records("rfis", company_id, project_id)[1]
        # A long coalescing window: the events are stored and acknowledged, not yet applied.
        with HookedService(settings(webhook_coalesce_seconds=300), port) as service:
            assert service.install(company_id)["status"] == "succeeded"
            service.settled(company_id)
            sim.state.update_record("rfis", rfi["id"], {"subject": "stored, not applied"})
            wait_for(lambda: len(events(database_url, company_id)) == 1, message="stored")
        ((_, _, _, _, run_id, applied_at, _),) = events(database_url, company_id)
        assert run_id is None and applied_at is None
        assert subject(destination_url, company_id, rfi["id"]) != "stored, not applied"
        with HookedService(settings(), port) as service:
            wait_for(
                lambda: subject(destination_url, company_id, rfi["id"]) == "stored, not applied",
                message="the stored event applied after the restart",
            )
            service.settled(company_id)
        assert events(database_url, company_id)[0][6] == "applied"


class TestBusyCompany:
    def test_events_wait_for_a_running_sync_and_go_to_the_next_run(
        self,
        sim: SimulatorServer,
        setup: tuple[int, Any],
        destination_url: str,
        database_url: str,
    ) -> None:
        port, settings = setup
        company_id = sim.state.company_ids()[0]
        project_id = sim.state.project_ids(company_id)[2]
        rfi = sim.state.records("rfis", company_id, project_id)[0]
        with HookedService(settings(webhook_yield_after_seconds=3600), port) as service:
            assert service.install(company_id)["status"] == "succeeded"
            service.settled(company_id)
            sim.state.set_faults(latency_ms=400, path_prefix="/rest/v1.0/projects")
            queued = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
            manual_id = queued.json()["run_id"]
            wait_for(
                lambda: (
                    service.admin.get(f"/admin/v1/syncs/{manual_id}").json()["status"] == "running"
                ),
                message="the manual run going",
            )
            sim.state.update_record("rfis", rfi["id"], {"subject": "during a run"})
            wait_for(lambda: len(events(database_url, company_id)) == 1, message="stored")
            manual = service.wait_for_run(manual_id)
            sim.state.set_faults()
            wait_for(
                lambda: subject(destination_url, company_id, rfi["id"]) == "during a run",
                message="the change applied",
            )
            service.settled(company_id)
            ((_, _, _, _, run_id, _, outcome),) = events(database_url, company_id)
            run = service.admin.get(f"/admin/v1/syncs/{run_id}").json()
        assert outcome == "applied" and run_id != manual_id
        assert run["trigger"] == "webhook" and run["started_at"] >= manual["finished_at"]
        assert manual["status"] == "succeeded"

    def test_a_long_run_yields_to_events_and_a_continuation_finishes_it(
        self,
        sim: SimulatorServer,
        setup: tuple[int, Any],
        destination_url: str,
        database_url: str,
    ) -> None:
        port, settings = setup
        company_id = sim.state.company_ids()[0]
        project_id = sim.state.project_ids(company_id)[2]
        rfi = sim.state.records("rfis", company_id, project_id)[0]
        overrides = {
            "webhook_yield_after_seconds": 0.5,
            "project_concurrency": 1,
            "streams": "all",
        }
        with HookedService(settings(**overrides), port) as service:
            assert service.install(company_id)["status"] == "succeeded"
            service.settled(company_id)
            sim.state.set_faults(latency_ms=150)
            queued = service.admin.post(
                f"/admin/v1/installations/{company_id}/syncs", json={"full_refresh": True}
            )
            manual_id = queued.json()["run_id"]
            wait_for(
                lambda: (
                    service.admin.get(f"/admin/v1/syncs/{manual_id}").json()["status"] == "running"
                ),
                message="the manual run going",
            )
            sim.state.update_record("rfis", rfi["id"], {"subject": "yielded to"})
            manual = service.wait_for_run(manual_id)
            wait_for(
                lambda: subject(destination_url, company_id, rfi["id"]) == "yielded to",
                message="the change applied",
            )
            sim.state.set_faults()
            wait_for(
                lambda: any(r["trigger"] == "continue" for r in service.runs(company_id)),
                message="a continuation",
            )
            service.settled(company_id, timeout=60)
            runs = service.runs(company_id)
        assert manual["status"] == "succeeded", manual["error"]
        deferred = sum(s["units_deferred"] for s in manual["streams"].values())
        assert deferred > 0
        notes = [s["note"] for s in manual["streams"].values() if s["units_deferred"]]
        assert all("webhook events waiting" in (note or "") for note in notes)
        later = [r for r in runs if r["queued_at"] > manual["queued_at"]]
        assert {"webhook", "continue"} <= {r["trigger"] for r in later}
        assert all(r["status"] == "succeeded" for r in later)
        read_later = sum(
            s["units_done"]
            for r in later
            if r["trigger"] == "continue"
            for s in r["streams"].values()
        )
        assert read_later >= deferred - 1  # the continuation read what was left
