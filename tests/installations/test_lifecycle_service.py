"""The installation lifecycle through the running service, against the simulator over loopback:
discovery on a schedule, disconnect and reconnect, the admin create endpoint, callback order."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import (
    RunningService,
    callback_event,
    install_event,
    query_rows,
    signed,
    wait_until,
)


def installation_of(service: RunningService, company_id: int) -> dict[str, Any]:
    answer = service.admin.get(f"/admin/v1/installations/{company_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def runs_of(service: RunningService, company_id: int) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = service.admin.get(
        "/admin/v1/syncs", params={"company_id": company_id}
    ).json()
    return runs


class TestScheduledDiscovery:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"discovery_interval_seconds": 1, "streams": "projects,rfis"}

    def test_listed_companies_are_installed_and_synced_by_the_next_pass(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        ids = sim.state.company_ids()
        for company_id in ids:
            wait_until(
                lambda c=company_id: any(
                    r["status"] == "succeeded" and r["trigger"] == "install"
                    for r in runs_of(service, c)
                ),
                timeout=60,
                message=f"first sync of {company_id}",
            )
            inst = installation_of(service, company_id)
            assert (inst["status"], inst["source"]) == ("active", "discovery")

    def test_disconnect_is_not_uninstall_and_reconnect_resumes_incrementally(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        client = sim.state.clients()[0]
        assert service.callback(install_event(company_id, **client)).status_code == 202
        wait_until(
            lambda: any(r["status"] == "succeeded" for r in runs_of(service, company_id)),
            timeout=60,
            message="first sync",
        )
        sim.state.disconnect_company(company_id)
        queued = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
        assert queued.status_code == 202, queued.text
        run = service.wait_for_run(queued.json()["run_id"])
        assert run["status"] == "failed" and "not connected" in run["error"]
        inst = installation_of(service, company_id)
        assert inst["status"] == "disconnected"
        assert inst["credentials"] == {
            "source": "installation",
            "client_id": client["client_id"],
            "client_secret_set": True,
        }
        refused = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
        assert refused.status_code == 409 and "disconnected" in refused.text
        sim.state.install_company(company_id)  # the company admin reconnects the app
        wait_until(
            lambda: installation_of(service, company_id)["status"] == "active",
            timeout=60,
            message="reconnected by a probe",
        )
        wait_until(
            lambda: any(r["trigger"] == "reconnect" for r in runs_of(service, company_id)),
            message="the reconnect run",
        )
        reconnect = next(r for r in runs_of(service, company_id) if r["trigger"] == "reconnect")
        done = service.wait_for_run(reconnect["run_id"])
        assert done["status"] == "succeeded"
        assert done["full_refresh"] is False


class TestAdminCreate:
    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        """Two companies that installed the app and one that did not."""
        return SimulatorConfig(companies=2, projects=1, records=3, seed=3, uninstalled_companies=1)

    def test_create_reactivate_and_refusals(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        listed, other_listed, never = sim.state.company_ids()
        created = service.admin.post("/admin/v1/installations", json={"company_id": listed})
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "active" and created.json()["source"] == "admin"
        assert created.json()["company_name"]
        again = service.admin.post("/admin/v1/installations", json={"company_id": listed})
        assert again.status_code == 200 and again.json()["status"] == "active"
        run = service.wait_for_run(service.latest_run_id(listed))
        assert run["status"] == "succeeded" and run["full_refresh"] is True
        assert service.admin.delete(f"/admin/v1/installations/{listed}").status_code == 200
        back = service.admin.post("/admin/v1/installations", json={"company_id": listed})
        assert back.status_code == 200 and back.json()["status"] == "active"
        missing = service.admin.post("/admin/v1/installations", json={"company_id": never})
        assert missing.status_code == 404
        assert "not in the app's /companies listing" in missing.json()["error"]["message"]
        federal = service.admin.post(
            "/admin/v1/installations", json={"company_id": other_listed, "environment": "federal"}
        )
        assert federal.status_code == 400
        assert "CONNECTOR_FEDERAL_CLIENT_ID" in federal.json()["error"]["message"]
        for bad in ({}, {"company_id": "7"}, {"company_id": 7, "extra": 1}):
            answer = service.admin.post("/admin/v1/installations", json=bad)
            assert answer.status_code in (400, 422), bad


class TestCallbackOrder:
    def test_late_retry_of_an_old_created_does_not_resurrect(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        now = int(time.time())
        first = service.callback(install_event(company_id), timestamp=now - 60)
        assert first.status_code == 202
        gone = service.callback(callback_event("deleted", company_id), timestamp=now - 30)
        assert gone.json()["status"] == "uninstalled"
        late = service.callback(install_event(company_id), timestamp=now - 60)
        assert late.status_code == 202 and late.json()["status"] == "uninstalled"
        assert installation_of(service, company_id)["status"] == "uninstalled"
        # Signed when sent (after the uninstall was applied), as an onboarding hook would.
        newer = service.callback(install_event(company_id), timestamp=int(time.time()))
        assert newer.json()["status"] == "active"

    def test_deeply_nested_signed_body_is_400(self, service: RunningService) -> None:
        nested = "[" * 100_000 + "]" * 100_000
        body = f'{{"type": "installation.created", "data": {{"company_id": 5}}, "x": {nested}}}'
        for raw in (body.encode(), json.dumps({"data": json.loads("[" * 900 + "]" * 900)})):
            content = raw if isinstance(raw, bytes) else raw.encode()
            signed_body, headers = signed(content)
            answer = service.anonymous.post(
                "/callbacks/installations", content=signed_body, headers=headers
            )
            assert answer.status_code == 400, answer.text

    def test_reinstall_while_the_old_run_stops_is_accepted_and_queued(
        self, service: RunningService, sim: SimulatorServer, database_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        sim.state.set_faults(latency_ms=300, path_prefix="/rest/v1.0/projects/")
        assert service.callback(install_event(company_id)).status_code == 202
        old_run = service.latest_run_id(company_id)
        wait_until(
            lambda: service.admin.get(f"/admin/v1/syncs/{old_run}").json()["status"] == "running",
            message="the first run to start",
        )
        assert service.callback(callback_event("deleted", company_id)).status_code == 202
        again = service.callback(install_event(company_id))
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "active"
        sim.state.set_faults()
        assert service.wait_for_run(old_run)["status"] == "cancelled"
        wait_until(lambda: service.latest_run_id(company_id) != old_run, message="the new run")
        new_run = service.wait_for_run(service.latest_run_id(company_id))
        assert new_run["status"] == "succeeded" and new_run["full_refresh"] is True
        pending = query_rows(
            database_url,
            "SELECT pending_full_sync FROM installations WHERE company_id = :c",
            c=company_id,
        )
        assert not pending[0][0]


class TestReadyzShowsHeldListing:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"discovery_interval_seconds": 1, "streams": "projects"}

    def test_held_listing_is_shown_until_a_normal_one_returns(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        ids = sim.state.company_ids()
        wait_until(
            lambda: len(service.admin.get("/admin/v1/installations").json()) == len(ids),
            message="discovery installs every company",
        )
        for company_id in ids:
            sim.state.uninstall_company(company_id)

        def readyz() -> dict[str, Any]:
            body: dict[str, Any] = service.anonymous.get("/readyz").json()
            return body

        wait_until(lambda: "details" in readyz(), timeout=30, message="the held listing shown")
        held = readyz()
        assert held["status"] == "ready"  # shown, not a reason to take the service out
        assert held["details"]["discovery"]["reason"] == "the /companies listing was empty"
        metrics = service.admin.get("/metrics").text
        assert "connector_discovery_held 1.0" in metrics
        for company_id in ids:  # its syncs may find it disconnected; never uninstalled
            assert installation_of(service, company_id)["status"] in ("active", "disconnected")
        for company_id in ids:
            sim.state.install_company(company_id)
        wait_until(lambda: "details" not in readyz(), timeout=30, message="a normal listing")
