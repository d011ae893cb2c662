"""Install callbacks over real HTTP: every answer of SPEC section 3, replay, update, uninstall."""

from __future__ import annotations

import time

from procore_sim.server import SimulatorServer
from tests.factories import (
    RunningService,
    callback_event,
    install_event,
    query_rows,
    signed,
    wait_until,
)


def first_company(sim: SimulatorServer) -> int:
    return sim.state.company_ids()[0]


def secret_kinds(service: RunningService, company_id: int) -> set[str]:
    rows = query_rows(
        service.settings.database_url,
        "SELECT kind FROM stored_secrets WHERE company_id = :cid",
        cid=company_id,
    )
    return {row[0] for row in rows}


class TestInstallationCreated:
    def test_stores_installation_and_runs_first_full_sync(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = first_company(sim)
        answer = service.callback(install_event(company_id, "Acme Builders"))
        assert answer.status_code == 202
        assert answer.json() == {"company_id": company_id, "status": "active"}
        run = service.wait_for_run(service.latest_run_id(company_id))
        assert run["status"] == "succeeded", run
        assert run["trigger"] == "install" and run["full_refresh"] is True
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert inst["company_name"] == "Acme Builders"
        assert inst["status"] == "active"
        assert inst["schedule"] == service.settings.schedule
        assert inst["next_run_at"] is not None
        rows = query_rows(
            destination_url, "SELECT count(*) FROM projects WHERE company_id = :c", c=company_id
        )
        assert rows[0][0] == len(sim.state.project_ids(company_id))

    def test_credentials_in_callback_are_stored_encrypted(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = first_company(sim)
        client = sim.state.clients()[0]
        answer = service.callback(install_event(company_id, **client))
        assert answer.status_code == 202
        assert secret_kinds(service, company_id) == {"client_secret", "destination_url"}
        stored = query_rows(
            service.settings.database_url,
            "SELECT ciphertext FROM stored_secrets"
            " WHERE company_id = :c AND kind = 'client_secret'",
            c=company_id,
        )
        assert client["client_secret"].encode() not in bytes(stored[0][0])
        inst = service.admin.get(f"/admin/v1/installations/{company_id}")
        assert inst.json()["credentials"] == {
            "source": "installation",
            "client_id": client["client_id"],
            "client_secret_set": True,
        }
        assert client["client_secret"] not in inst.text

    def test_created_for_installed_company_updates_it(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = first_company(sim)
        assert service.callback(install_event(company_id, "Old Name")).status_code == 202
        first_run = service.wait_for_run(service.latest_run_id(company_id))
        again = service.callback(
            install_event(company_id, "New Name", environment="monthly_sandbox")
        )
        assert again.status_code == 202
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert (inst["company_name"], inst["environment"]) == ("New Name", "monthly_sandbox")
        runs = service.admin.get("/admin/v1/syncs", params={"company_id": company_id}).json()
        assert [run["run_id"] for run in runs] == [first_run["run_id"]]

    def test_updated_replaces_credentials(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = first_company(sim)
        assert service.callback(install_event(company_id)).status_code == 202
        client = sim.state.clients()[0]
        answer = service.callback(callback_event("updated", company_id, **client))
        assert answer.json() == {"company_id": company_id, "status": "active"}
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert inst["credentials"]["source"] == "installation"


class TestReplay:
    def test_repeated_webhook_id_is_answered_as_first_time_and_changes_nothing(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = first_company(sim)
        first = service.callback(install_event(company_id, "Acme"), msg_id="msg_replayed")
        service.wait_for_run(service.latest_run_id(company_id))
        # Same id, validly signed again, but now claiming an uninstall and another name.
        replay = service.callback(callback_event("deleted", company_id), msg_id="msg_replayed")
        renamed = service.callback(install_event(company_id, "Other"), msg_id="msg_replayed")
        assert replay.status_code == renamed.status_code == 202
        assert replay.json() == renamed.json() == first.json()
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert (inst["status"], inst["company_name"]) == ("active", "Acme")
        seen = query_rows(service.settings.database_url, "SELECT event_type FROM callback_events")
        assert seen == [("installation.created",)]
        runs = service.admin.get("/admin/v1/syncs", params={"company_id": company_id}).json()
        assert len(runs) == 1


class TestInstallationDeleted:
    def test_stops_schedule_and_destroys_credentials_but_keeps_data(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = first_company(sim)
        client = sim.state.clients()[0]
        service.install_and_sync(company_id, **client)
        answer = service.callback(callback_event("deleted", company_id))
        assert answer.json() == {"company_id": company_id, "status": "uninstalled"}
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert inst["status"] == "uninstalled"
        assert inst["status_reason"] == "app uninstalled (callback)"
        assert inst["next_run_at"] is None and inst["uninstalled_at"] is not None
        assert inst["credentials"]["client_secret_set"] is False
        assert "client_secret" not in secret_kinds(service, company_id)
        kept = query_rows(
            destination_url, "SELECT count(*) FROM projects WHERE company_id = :c", c=company_id
        )
        assert kept[0][0] > 0
        queued = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
        assert queued.status_code == 409
        assert queued.json()["error"]["code"] == "conflict"

    def test_cancels_a_running_sync(self, service: RunningService, sim: SimulatorServer) -> None:
        company_id = first_company(sim)
        sim.state.set_faults(latency_ms=150)
        assert service.callback(install_event(company_id)).status_code == 202
        run_id = service.latest_run_id(company_id)
        wait_until(
            lambda: service.admin.get(f"/admin/v1/syncs/{run_id}").json()["status"] == "running",
            message="the first sync to start",
        )
        service.callback(callback_event("deleted", company_id))
        run = service.wait_for_run(run_id, timeout=30)
        assert run["status"] == "cancelled"
        sim.state.set_faults()

    def test_unknown_company_is_answered_uninstalled(self, service: RunningService) -> None:
        answer = service.callback(callback_event("deleted", 424242))
        assert answer.status_code == 202
        assert answer.json() == {"company_id": 424242, "status": "uninstalled"}


class TestSignature:
    def test_missing_wrong_and_stale_signatures_are_401(self, service: RunningService) -> None:
        body, headers = signed(install_event(1))
        url = "/callbacks/installations"
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            partial = {k: v for k, v in headers.items() if k != name}
            assert service.anonymous.post(url, content=body, headers=partial).status_code == 401
        wrong = {**headers, "webhook-signature": "v1,AAAA" + headers["webhook-signature"][7:]}
        assert service.anonymous.post(url, content=body, headers=wrong).status_code == 401
        tampered = body.replace(b'"company_id": 1', b'"company_id": 2')
        assert service.anonymous.post(url, content=tampered, headers=headers).status_code == 401
        other = "whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0xMjM0NQ=="
        for kwargs in (
            {"timestamp": int(time.time()) - 301},
            {"timestamp": int(time.time()) + 330},  # margin: a loaded machine is slow
            {"secret": other},
        ):
            body, bad = signed(install_event(1), **kwargs)  # type: ignore[arg-type]
            answer = service.anonymous.post(url, content=body, headers=bad)
            assert answer.status_code == 401, kwargs
            assert answer.json()["error"]["code"] == "unauthorized"
        assert service.admin.get("/admin/v1/installations").json() == []


class TestMalformedBody:
    def test_bad_field_is_400_naming_it(self, service: RunningService) -> None:
        cases = {
            b"not json": "JSON",
            b"[]": "",
            b'{"type": "installation.exploded", "data": {"company_id": 1}}': "type",
            b'{"type": "installation.created", "data": {"company_id": "abc"}}': "data.company_id",
            b'{"type": "installation.created", "data": {"company_id": -4}}': "data.company_id",
            b'{"type": "installation.created", "data": {}}': "data.company_id",
            b'{"type": "installation.created",'
            b' "data": {"company_id": 5, "environment": "moon"}}': "data.environment",
            b'{"type": "installation.created",'
            b' "data": {"company_id": 5, "company_name": "a\\u0000b"}}': "data.company_name",
        }
        for raw, field in cases.items():
            body, headers = signed(raw)
            answer = service.anonymous.post(
                "/callbacks/installations", content=body, headers=headers
            )
            assert answer.status_code == 400, raw
            error = answer.json()["error"]
            assert error["code"] == "bad_request"
            assert field in error["message"], (raw, error)
        assert service.admin.get("/admin/v1/installations").json() == []
