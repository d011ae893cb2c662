"""SPEC sections 3 and 4 through HTTP only: signed callbacks, the admin API, health endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.acceptance.fake_procore import FakeProcore
from tests.acceptance.harness import (
    CALLBACK_SECRET,
    OTHER_TOKEN,
    Destination,
    Service,
    event,
    signed_headers,
)


@pytest.fixture
def service(
    fake: FakeProcore,
    env_for: Callable[..., dict[str, str]],
    start: Callable[[dict[str, str]], Service],
) -> Service:
    """One service over a fake with one small company (projects and rfis only)."""
    company = fake.add_company("Acme", projects=2)
    for pid in company.projects:
        fake.add_records("rfis", company.id, pid, 30)
    running = start(env_for(CONNECTOR_STREAMS="projects,rfis"))
    running.wait_installed(company.id)
    return running


def company(fake: FakeProcore) -> int:
    return next(iter(fake.companies))


def assert_error(answer: httpx.Response, status: int) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"} and {"code", "message", "details"} <= set(body["error"]), body
    return body["error"]


class TestCallbacks:
    def test_bad_signatures_are_401(self, service: Service, fake: FakeProcore) -> None:
        body = event("created", 424242)  # a company discovery does not know
        url = "/callbacks/installations"
        assert_error(service.anon.post(url, content=body), 401)  # no headers at all
        other = "whsec_" + "b3RoZXItc2VjcmV0LW9mLTMyLWJ5dGVzLWxvbmchIQ=="
        assert_error(service.callback(body, secret=other), 401)
        assert_error(service.callback(body, ts=int(time.time()) - 301 - 5), 401)  # stale
        assert_error(service.callback(body, ts=int(time.time()) + 600), 401)  # from the future
        headers = signed_headers(body)
        tampered = body.replace(b"Acme", b"Acmf")
        assert_error(service.anon.post(url, content=tampered, headers=headers), 401)
        headers["webhook-signature"] = "v1,AAAA" + headers["webhook-signature"][7:]
        assert_error(service.anon.post(url, content=body, headers=headers), 401)
        assert service.runs(424242) == []
        assert_error(service.admin.get("/admin/v1/installations/424242"), 404)
        # a space-separated list of signatures is accepted when one of them matches
        body = event("created", 424242)
        headers = signed_headers(body)
        headers["webhook-signature"] = "v1,Zm9vYmFy " + headers["webhook-signature"]
        answer = service.anon.post("/callbacks/installations", content=body, headers=headers)
        assert answer.status_code == 202, answer.text

    def test_malformed_body_is_400_naming_the_field(self, service: Service) -> None:
        cases: list[tuple[dict[str, object], str]] = [
            ({"type": "installation.created", "data": {"company_id": "abc"}}, "company_id"),
            ({"type": "installation.created", "data": {}}, "company_id"),
            ({"type": "installation.exploded", "data": {"company_id": 5}}, "type"),
            ({"data": {"company_id": 5}}, "type"),
            ({"type": "installation.created"}, "data"),
            (
                {"type": "installation.created", "data": {"company_id": 5, "environment": "moon"}},
                "environment",
            ),
        ]
        for body, field in cases:
            error = assert_error(service.callback(json.dumps(body).encode()), 400)
            assert field in json.dumps(error), error
        assert_error(service.callback(b"{not json"), 400)

    def test_concurrent_created_callbacks_for_one_company_all_succeed(
        self, service: Service
    ) -> None:
        statuses: list[int] = []
        for cid in (9101, 9102, 9103, 9104):
            body = event("created", cid)
            with ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(service.callback, [body] * 6))
            statuses += [a.status_code for a in answers]
        assert set(statuses) == {202}, statuses

    def test_replayed_webhook_id_is_answered_the_same_and_changes_nothing(
        self, service: Service, fake: FakeProcore
    ) -> None:
        cid = company(fake)
        first = service.callback(event("created", cid), msg_id="msg_same")
        assert first.status_code == 202
        run = service.wait_first_run(cid)
        again = service.callback(event("created", cid, name="Renamed"), msg_id="msg_same")
        assert again.status_code == first.status_code and again.json() == first.json()
        deleted = service.callback(event("deleted", cid), msg_id="msg_same")
        assert deleted.json() == first.json()
        assert [r["run_id"] for r in service.runs(cid)] == [run["run_id"]]
        inst = service.admin.get(f"/admin/v1/installations/{cid}").json()
        assert inst["company_name"] == "Acme Builders" and inst["status"] == "active"

    def test_deleted_uninstalls_keeps_data_and_stops_calling(
        self, service: Service, fake: FakeProcore
    ) -> None:
        cid = company(fake)
        assert service.callback(event("created", cid)).status_code == 202
        assert service.wait_first_run(cid)["status"] == "succeeded"
        dest = Destination(service_env_destination(service))
        before = dest.rows("rfis", cid)
        assert len(before) == 60
        answer = service.callback(event("deleted", cid))
        assert answer.status_code == 202 and answer.json() == {
            "company_id": cid,
            "status": "uninstalled",
        }
        inst = service.admin.get(f"/admin/v1/installations/{cid}").json()
        assert inst["status"] == "uninstalled"
        fake.clear_log()
        queued = service.admin.post(f"/admin/v1/installations/{cid}/syncs")
        assert queued.status_code in (404, 409), queued.text
        time.sleep(1.0)
        assert fake.api_calls(cid) == []
        assert dest.rows("rfis", cid).keys() == before.keys()

    def test_deleted_cancels_a_running_run(self, service: Service, fake: FakeProcore) -> None:
        cid = company(fake)
        assert service.callback(event("created", cid)).status_code == 202
        assert service.wait_first_run(cid)["status"] == "succeeded"
        fake.latency = 1.0
        assert service.admin.post(f"/admin/v1/installations/{cid}/syncs").status_code == 202
        deadline = time.monotonic() + 10
        while not (runs := service.runs(cid)) or runs[0]["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert service.callback(event("deleted", cid)).status_code == 202
        run = service.wait_run(runs[0]["run_id"], timeout=15)
        assert run["status"] == "cancelled", run
        count = len(fake.api_calls(cid))
        time.sleep(1.0)
        assert len(fake.api_calls(cid)) == count


def service_env_destination(service: Service) -> str:
    return f"sqlite:///{service.log_path.parent / 'dest.db'}"


class TestAdmin:
    def test_admin_needs_a_bearer_token(self, service: Service) -> None:
        for path in ("/admin/v1/installations", "/admin/v1/syncs"):
            assert_error(service.anon.get(path), 401)
            assert_error(service.anon.get(path, headers={"Authorization": "Bearer nope"}), 401)
            assert_error(service.anon.get(path, headers={"Authorization": "Basic eDp5"}), 401)
        assert_error(service.anon.post("/admin/v1/installations/1/syncs"), 401)
        assert service.anon.get("/openapi.json").status_code == 200
        ok = service.anon.get(
            "/admin/v1/installations", headers={"Authorization": f"Bearer {OTHER_TOKEN}"}
        )
        assert ok.status_code == 200  # every token of the comma list is accepted
        assert service.anon.get("/livez").status_code == 200
        deadline = time.monotonic() + 15
        while (ready := service.anon.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.2)
        metrics = service.anon.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "# TYPE" in metrics.text

    def test_second_sync_while_running_is_409_and_cancel_stops_it(
        self, service: Service, fake: FakeProcore
    ) -> None:
        cid = company(fake)
        assert service.callback(event("created", cid)).status_code == 202
        assert service.wait_first_run(cid)["status"] == "succeeded"
        fake.latency = 1.0
        first = service.admin.post(f"/admin/v1/installations/{cid}/syncs")
        assert first.status_code == 202
        run_id = first.json()["run_id"]
        deadline = time.monotonic() + 10
        while service.admin.get(f"/admin/v1/syncs/{run_id}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = service.admin.post(f"/admin/v1/installations/{cid}/syncs")
        assert_error(second, 409)
        cancel = service.admin.post(f"/admin/v1/syncs/{run_id}/cancel")
        asked = time.monotonic()
        assert cancel.status_code in (200, 202), cancel.text
        run = service.wait_run(run_id, timeout=15)
        assert run["status"] == "cancelled", run
        assert time.monotonic() - asked < 4.5  # stops within a request or two
        assert run["finished_at"] is not None
        fake.latency = 0
        again = service.admin.post(
            f"/admin/v1/installations/{cid}/syncs", json={"full_refresh": True}
        )
        assert again.status_code == 202, again.text
        assert service.wait_run(again.json()["run_id"])["status"] == "succeeded"

        runs = service.runs(cid)
        assert len(runs) == 3
        stamps = [r["queued_at"] for r in runs]
        assert stamps == sorted(stamps, reverse=True)  # newest first
        assert [r["status"] for r in service.runs(cid, status="cancelled")] == ["cancelled"]
        assert len(service.runs(cid, limit=1)) == 1
        assert service.runs(cid, limit=1)[0]["run_id"] == runs[0]["run_id"]
        assert service.runs(company_id=cid + 1) == []
        one = service.admin.get(f"/admin/v1/syncs/{runs[0]['run_id']}").json()
        for key in ("status", "started_at", "finished_at", "error"):
            assert key in one
        assert "rfis" in json.dumps(one)
        assert_error(service.admin.get("/admin/v1/syncs/does-not-exist"), 404)

    def test_installations_views_patch_and_credentials(
        self, service: Service, fake: FakeProcore
    ) -> None:
        cid = company(fake)
        assert service.callback(event("created", cid)).status_code == 202
        assert service.wait_first_run(cid)["status"] == "succeeded"
        listing = service.admin.get("/admin/v1/installations").json()
        items = listing
        mine = next(i for i in items if i["company_id"] == cid)
        assert mine["company_name"] == "Acme Builders" and mine["status"] == "active"
        for key in ("schedule", "streams", "destination", "last_run"):
            assert key in mine, key
        detail = service.admin.get(f"/admin/v1/installations/{cid}").json()
        assert "rfis" in json.dumps(detail)
        assert_error(service.admin.get("/admin/v1/installations/999"), 404)

        secret_url = "postgresql://u:hunter2-very-secret@127.0.0.1:5432/x"
        patched = service.admin.patch(
            f"/admin/v1/installations/{cid}",
            json={"schedule": "every 15m", "paused": True, "destination_url": secret_url},
        )
        assert patched.status_code == 200, patched.text
        assert "hunter2-very-secret" not in patched.text
        assert patched.json()["schedule"] == "every 15m" and patched.json()["paused"] is True
        assert "hunter2-very-secret" not in service.admin.get("/admin/v1/installations").text
        bad = service.admin.patch(f"/admin/v1/installations/{cid}", json={"streams": "nope"})
        assert "streams" in json.dumps(assert_error(bad, 400))

        fake.clients["replacement-id"] = "replacement-secret-123456"
        put = service.admin.put(
            f"/admin/v1/installations/{cid}/credentials",
            json={"client_id": "replacement-id", "client_secret": "replacement-secret-123456"},
        )
        assert put.status_code == 200, put.text
        assert "replacement-secret-123456" not in put.text
        assert "replacement-secret-123456" not in service.log()


def test_callbacks_refused_without_secret(
    fake: FakeProcore,
    env_for: Callable[..., dict[str, str]],
    start: Callable[[dict[str, str]], Service],
) -> None:
    service = start(env_for(CONNECTOR_CALLBACK_SECRET=""))
    body = event("created", 77)
    answer = service.callback(body, secret=CALLBACK_SECRET)
    assert answer.status_code == 401
