"""The walking skeleton end to end: signed callback → sync → destination rows equal Procore's."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import Any

import pytest

from procore_sim.server import SimulatorServer
from tests.factories import ADMIN_TOKEN, CALLBACK_SECRET, TEST_KEY, RunningService, install_event


def destination_rows(url: str, table: str, company_id: int) -> dict[int, dict[str, Any]]:
    """Rows of one destination table of a company, keyed by id."""
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            f'SELECT * FROM "{table}" WHERE company_id = ?',  # noqa: S608 - fixed table names
            (company_id,),
        ).fetchall()
    return {row["id"]: dict(row) for row in rows}


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"streams": "projects,users,rfis"}


class TestEndToEnd:
    def test_callback_sync_lands_simulator_records(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        run = service.install_and_sync(company_id)
        assert run["status"] == "succeeded", run["error"]
        assert run["trigger"] == "install" and run["full_refresh"] is True

        for stream in ("projects", "users", "rfis"):
            expected: dict[int, dict[str, Any]] = {}
            if stream in ("projects", "users"):
                expected = {r["id"]: r for r in sim.state.records(stream, company_id)}
            else:
                for project_id in sim.state.project_ids(company_id):
                    expected |= {
                        r["id"]: r | {"_project": project_id}
                        for r in sim.state.records(stream, company_id, project_id)
                    }
            rows = destination_rows(destination_url, stream, company_id)
            assert set(rows) == set(expected), stream
            for record_id, row in rows.items():
                record = dict(expected[record_id])
                project_id = record.pop("_project", None)
                assert json.loads(row["data"]) == record
                assert row["project_id"] == project_id
                assert row["deleted_at"] is None and row["synced_at"] is not None
            assert run["streams"][stream]["records_written"] == len(expected)

    def test_every_call_sends_company_header_and_reuses_one_token(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        sim.state.clear_request_log()
        run = service.install_and_sync(company_id)
        assert run["status"] == "succeeded", run["error"]
        log = sim.state.request_log()
        api_calls = [e for e in log if e["path"].startswith("/rest/")]
        assert api_calls and all(e["company_header"] == str(company_id) for e in api_calls)
        assert sum(e["path"] == "/oauth/token" for e in log) == 1
        assert all(e["status"] < 400 for e in log)
        assert run["requests"] == len(api_calls)

    def test_incremental_sync_reads_changes_only(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        project_id = sim.state.project_ids(company_id)[0]
        rfi = sim.state.records("rfis", company_id, project_id)[0]
        time.sleep(1.1)  # updated_at has second precision
        sim.state.update_record("rfis", rfi["id"], {"subject": "changed subject"})
        sim.state.clear_request_log()

        queued = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
        assert queued.status_code == 202
        run = service.wait_for_run(queued.json()["run_id"])
        assert run["status"] == "succeeded", run["error"]
        rfi_calls = [e for e in sim.state.request_log() if e["path"].endswith("/rfis")]
        assert rfi_calls and all("filters[updated_at]" in e["query"] for e in rfi_calls)
        assert run["streams"]["rfis"]["records_written"] == 1
        row = destination_rows(destination_url, "rfis", company_id)[rfi["id"]]
        assert json.loads(row["data"])["subject"] == "changed subject"


class TestCallbackSignature:
    def event(self, company_id: int = 42) -> dict[str, Any]:
        return install_event(company_id)

    def test_missing_signature_is_401(self, service: RunningService) -> None:
        answer = service.anonymous.post("/callbacks/installations", json=self.event())
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"

    def test_wrong_secret_is_401(self, service: RunningService) -> None:
        other = "whsec_" + "b3RoZXItc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmchIQ=="
        assert service.callback(self.event(), secret=other).status_code == 401

    def test_stale_timestamp_is_401(self, service: RunningService) -> None:
        stale = int(time.time()) - 6 * 60
        assert service.callback(self.event(), timestamp=stale).status_code == 401

    def test_tampered_body_is_401(self, service: RunningService) -> None:
        from tests.factories import signed

        body, headers = signed(self.event())
        tampered = body.replace(b"42", b"43")
        answer = service.anonymous.post(
            "/callbacks/installations", content=tampered, headers=headers
        )
        assert answer.status_code == 401

    def test_malformed_body_is_400_naming_the_field(self, service: RunningService) -> None:
        answer = service.callback({"type": "installation.created", "data": {"company_id": "x"}})
        assert answer.status_code == 400
        assert "company_id" in answer.json()["error"]["message"]
        answer = service.callback({"type": "installation.exploded", "data": {"company_id": 1}})
        assert answer.status_code == 400 and "type" in answer.json()["error"]["message"]

    def test_replayed_webhook_id_changes_nothing(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        first = service.callback(install_event(company_id), msg_id="msg_replay")
        run = service.wait_for_run(service.latest_run_id(company_id))
        again = service.callback(install_event(company_id, "Renamed"), msg_id="msg_replay")
        assert again.status_code == 202 and again.json() == first.json()
        runs = service.admin.get("/admin/v1/syncs", params={"company_id": company_id}).json()
        assert [r["run_id"] for r in runs] == [run["run_id"]]
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert inst["company_name"] == "Acme"


class TestNoSecretsLeak:
    def test_no_secret_in_responses_or_logs(
        self,
        service: RunningService,
        sim: SimulatorServer,
        caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str],
    ) -> None:
        caplog.set_level(logging.DEBUG)
        company_id = sim.state.company_ids()[0]
        bodies: list[Any] = [service.install_and_sync(company_id)]
        for path in (
            "/admin/v1/installations",
            f"/admin/v1/installations/{company_id}",
            "/admin/v1/syncs",
            "/openapi.json",
            "/readyz",
        ):
            bodies.append(service.admin.get(path).text)
        tokens = sim.state.issued_tokens()
        assert tokens
        secrets = [
            CALLBACK_SECRET,
            ADMIN_TOKEN,
            TEST_KEY.split(":", 1)[1],
            service.settings.client_secret.get_secret_value(),
            *tokens,
        ]  # type: ignore[union-attr]
        everything = "\n".join(map(str, bodies)) + caplog.text + "".join(capfd.readouterr())
        for value in secrets:
            assert value not in everything
