"""Odd but legal inputs get clear answers, and out-of-order events do not resurrect anything."""

from __future__ import annotations

from procore_sim.server import SimulatorServer
from tests.factories import RunningService, callback_event, install_event


class TestCallbackEdges:
    def test_updated_after_deleted_does_not_reinstall(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        service.install_and_sync(company_id, environment="monthly_sandbox")
        assert service.callback(callback_event("deleted", company_id)).status_code == 202
        late = service.callback(callback_event("updated", company_id, company_name="Renamed"))
        assert late.status_code == 202 and late.json()["status"] == "uninstalled"
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert inst["status"] == "uninstalled" and inst["company_name"] == "Renamed"
        assert (
            inst["environment"] == "monthly_sandbox"
        )  # not reset by an event that did not name one
        runs = service.admin.get("/admin/v1/syncs", params={"company_id": company_id}).json()
        assert len(runs) == 1

    def test_non_integer_company_ids_and_long_webhook_ids_are_400(
        self, service: RunningService
    ) -> None:
        for value in (True, 7.0, "7"):
            answer = service.callback(
                {"type": "installation.created", "data": {"company_id": value}}
            )
            assert answer.status_code == 400, value
            assert "company_id" in answer.json()["error"]["message"]
        answer = service.callback(install_event(77), msg_id="m" * 300)
        assert answer.status_code == 400 and "webhook-id" in answer.json()["error"]["message"]


class TestAdminEdges:
    def test_bad_schedules_streams_and_flags_are_400(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        service.install_and_sync(company_id)
        path = f"/admin/v1/installations/{company_id}"
        for body in (
            {"schedule": "0 0 31 2 *"},  # February 31st never comes
            {"schedule": "every 5000000d"},
            {"streams": []},
            {"streams": ""},
            {"paused": "yes"},
        ):
            answer = service.admin.patch(path, json=body)
            assert answer.status_code == 400, (body, answer.text)
            assert answer.json()["error"]["message"]

    def test_credentials_of_an_uninstalled_company_are_not_stored(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        service.install_and_sync(company_id)
        service.callback(callback_event("deleted", company_id))
        answer = service.admin.put(
            f"/admin/v1/installations/{company_id}/credentials",
            json={"client_id": "x", "client_secret": "y"},
        )
        assert answer.status_code == 409
