"""Applying events: a change in Procore lands through a targeted run of its unit; deletes land
at once; bursts coalesce; duplicates and reordering change nothing."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from procore_sim.server import SimulatorServer
from tests.webhooks.conftest import HookedService, events, rows, wait_for
from tests.webhooks.test_receiver import metric


def api_requests(sim: SimulatorServer, company_id: int) -> int:
    """Procore API requests the simulator logged for a company (Webhooks API excluded)."""
    return sum(
        1
        for entry in sim.state.request_log()
        if entry["path"].startswith("/rest/")
        and not entry["path"].startswith("/rest/v1.0/webhooks")
        and entry["company_header"] == str(company_id)
    )


def webhook_runs(hooked: HookedService, company_id: int) -> list[dict[str, Any]]:
    return [r for r in hooked.runs(company_id) if r["trigger"] == "webhook"]


@pytest.fixture
def company(hooked: HookedService, sim: SimulatorServer) -> int:
    company_id = sim.state.company_ids()[0]
    run = hooked.install(company_id)
    assert run["status"] == "succeeded", run["error"]
    hooked.settled(company_id)
    return company_id


class TestChanges:
    def test_an_update_lands_through_a_webhook_run_of_its_unit(
        self,
        hooked: HookedService,
        sim: SimulatorServer,
        company: int,
        destination_url: str,
        database_url: str,
    ) -> None:
        project_id = sim.state.project_ids(company)[1]
        rfi = sim.state.records("rfis", company, project_id)[2]
        lag_before = metric(hooked, "connector_webhook_lag_seconds_count")
        sim.state.clear_request_log()
        sim.state.update_record("rfis", rfi["id"], {"subject": "moved by a webhook"})
        wait_for(
            lambda: (
                json.loads(rows(destination_url, "rfis", company)[rfi["id"]]["data"])["subject"]
                == "moved by a webhook"
            ),
            message="the change in the destination",
        )
        hooked.settled(company)
        (run,) = webhook_runs(hooked, company)
        assert run["status"] == "succeeded" and run["full_refresh"] is False
        assert run["streams"]["rfis"]["units_total"] == 1  # only the unit that changed
        assert set(run["streams"]) == {"rfis"}
        # The unit's changes since its cursor, and its recycle bin over the same window.
        assert run["requests"] <= 3 and api_requests(sim, company) == run["requests"]
        ((key, stream, resource_id, kind, run_id, applied_at, outcome),) = events(
            database_url, company
        )
        assert (stream, resource_id, kind, outcome) == ("rfis", rfi["id"], "update", "applied")
        assert run_id == run["run_id"] and applied_at is not None and len(key) == 26
        assert metric(hooked, "connector_webhook_lag_seconds_count") == lag_before + 1

    def test_a_created_record_of_a_company_stream_lands(
        self, hooked: HookedService, sim: SimulatorServer, company: int, destination_url: str
    ) -> None:
        user = sim.state.create_record("users", company, None, {"name": "Hook Newman"})
        wait_for(lambda: user["id"] in rows(destination_url, "users", company), message="user")

    def test_a_delete_marks_the_row_deleted_at_once(
        self,
        hooked: HookedService,
        sim: SimulatorServer,
        company: int,
        destination_url: str,
        database_url: str,
    ) -> None:
        project_id = sim.state.project_ids(company)[0]
        event_row = sim.state.records("change_events", company, project_id)[0]
        user = sim.state.records("users", company)[3]
        sim.state.delete_record("change_events", event_row["id"])
        sim.state.delete_record("users", user["id"])  # a hard delete: only the event tells
        wait_for(
            lambda: (
                rows(destination_url, "users", company)[user["id"]]["deleted_at"] is not None
                and rows(destination_url, "change_events", company)[event_row["id"]]["deleted_at"]
                is not None
            ),
            message="both rows marked deleted",
        )
        hooked.settled(company)
        outcomes = {(e[1], e[3], e[6]) for e in events(database_url, company)}
        assert outcomes == {("users", "delete", "applied"), ("change_events", "delete", "applied")}
        # The deleted user left the known ids: a later full listing does not count it again.
        sync = hooked.admin.post(
            f"/admin/v1/installations/{company}/syncs", json={"full_refresh": True}
        )
        run = hooked.wait_for_run(sync.json()["run_id"])
        assert run["status"] == "succeeded" and run["streams"]["users"]["records_deleted"] == 0


class TestBursts:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"webhook_coalesce_seconds": 2.0}

    def test_a_thousand_events_on_one_stream_cost_a_handful_of_requests(
        self,
        hooked: HookedService,
        sim: SimulatorServer,
        company: int,
        destination_url: str,
        database_url: str,
    ) -> None:
        project_id = sim.state.project_ids(company)[0]
        existing = sim.state.records("rfis", company, project_id)
        sim.state.clear_request_log()
        hub = sim.state.webhooks
        hub.hold(True)  # the burst queues in Procore, then arrives as fast as it is taken
        created = [
            sim.state.create_record("rfis", company, project_id, {"subject": f"burst {n}"})
            for n in range(900)
        ]
        for n in range(100):
            record = existing[n % len(existing)]
            sim.state.update_record("rfis", record["id"], {"subject": f"edit {n}"})
        started = time.monotonic()
        hub.hold(False)
        wanted = {r["id"] for r in created}
        wait_for(
            lambda: wanted <= set(rows(destination_url, "rfis", company)),
            timeout=60,
            message="all 900 created RFIs in the destination",
        )
        hooked.settled(company, timeout=60)
        stored = events(database_url, company)
        assert len(stored) == 1000 and all(e[6] == "applied" for e in stored)
        delivered = max(
            time.monotonic() - started,
            max(d["completed_at"] for d in hub.deliveries) and 0.0,
        )
        runs = webhook_runs(hooked, company)
        spent = sum(r["requests"] for r in runs)
        assert spent == api_requests(sim, company)
        # Two requests a read (the unit's changes and its recycle bin), one read per window
        # while deliveries keep arriving: a handful, never one per event.
        print(f"1000 events: {len(runs)} runs, {spent} requests, delivered in {delivered:.1f} s")
        assert spent <= 2 * len(runs) and len(runs) <= delivered / (3 * 2.0) + 2
        assert spent <= 20, [(r["requests"], r["records"]) for r in runs]
        landed = rows(destination_url, "rfis", company)
        for n in range(100):
            record = existing[n % len(existing)]
            last = max(m for m in range(100) if m % len(existing) == n % len(existing))
            assert json.loads(landed[record["id"]]["data"])["subject"] == f"edit {last}"


class TestAtLeastOnce:
    def test_duplicate_and_reordered_deliveries_apply_each_change_once(
        self,
        hooked: HookedService,
        sim: SimulatorServer,
        company: int,
        destination_url: str,
        database_url: str,
    ) -> None:
        project_id = sim.state.project_ids(company)[2]
        first, second = sim.state.records("rfis", company, project_id)[:2]
        dedup_before = metric(hooked, "connector_webhook_events_deduplicated_total")
        sim.state.webhooks.hold(True)
        sim.state.update_record("rfis", first["id"], {"subject": "first edit"})
        sim.state.update_record("rfis", first["id"], {"subject": "second edit"})
        created = sim.state.create_record("rfis", company, project_id, {"subject": "new"})
        sim.state.delete_record("rfis", second["id"])
        hub = sim.state.webhooks
        assert (
            hub.inject("duplicate", None, sim.state.clock()) == 4
        )  # four events, each now queued twice
        assert hub.inject("out_of_order", None, sim.state.clock()) == 8
        hub.hold(False)
        wait_for(
            lambda: (
                len(hub.pending(sim.state.clock())) == 0
                and sum(d["outcome"] == "ok" for d in hub.deliveries) >= 8
            ),
            message="every delivery made",
        )
        hooked.settled(company)
        landed = rows(destination_url, "rfis", company)
        assert json.loads(landed[first["id"]]["data"])["subject"] == "second edit"
        assert created["id"] in landed and landed[created["id"]]["deleted_at"] is None
        assert landed[second["id"]]["deleted_at"] is not None
        stored = events(database_url, company)
        assert len(stored) == 4 and len({e[0] for e in stored}) == 4
        assert all(e[6] == "applied" for e in stored)
        assert metric(hooked, "connector_webhook_events_deduplicated_total") == dedup_before + 4
