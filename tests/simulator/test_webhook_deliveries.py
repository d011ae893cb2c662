"""Webhook deliveries: v2.0 payloads for control-API changes, at least once, in order, paused
and retried with backoff while the receiver fails, discarded after the configured time."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from procore_sim import SimulatorConfig
from procore_sim.models import PUBLISHED_MODELS
from tests.simulator.conftest import Caller, running
from tests.simulator.receiver import Receiver
from tests.simulator.test_webhooks_api import SECRET_HEADER, call

HOOKS = "/rest/v1.0/webhooks/hooks"
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
FAST = {
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_cap_seconds": 0.2,
    "webhook_timeout_seconds": 0.5,
}


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig.lenient(companies=1, projects=2, records=5, **FAST)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def subscribe(
    caller: Caller,
    url: str,
    resource: str,
    *event_types: str,
    project_id: int | None = None,
) -> dict[str, Any]:
    """A hook to url with triggers on one resource; company-scoped unless project_id."""
    scope = {"project_id": project_id} if project_id else {"company_id": caller.company_id}
    body = {
        **scope,
        "hook": {
            "api_version": "v2",
            "namespace": "acme-sync",
            "destination_url": url,
            "destination_headers": SECRET_HEADER,
        },
    }
    hook: dict[str, Any] = call(caller, "POST", HOOKS, body).json()
    triggers = [{"resource_name": resource, "event_type": e} for e in event_types]
    made = call(
        caller,
        "POST",
        f"{HOOKS}/{hook['id']}/triggers/bulk",
        {**scope, "api_version": "v2", "triggers": triggers},
    )
    assert made.status_code == 200, made.text
    return hook


def patch(caller: Caller, stream: str, record_id: int, **fields: Any) -> None:
    response = caller.http.patch(f"/_sim/records/{stream}/{record_id}", json={"fields": fields})
    assert response.status_code == 200


def deliveries(caller: Caller, hook: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in {"company_id": caller.company_id, **params}.items())
    response = call(caller, "GET", f"{HOOKS}/{hook['id']}/deliveries?{query}")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


class TestPayload:
    def test_control_api_change_is_posted_as_a_v2_payload(
        self, caller: Caller, receiver: Receiver
    ) -> None:
        cid = caller.company_id
        pid = caller.sim.state.project_ids(cid)[0]
        rfi = caller.sim.state.records("rfis", cid, pid)[0]
        hook = subscribe(caller, receiver.url, "RFIs", "update")
        patch(caller, "rfis", rfi["id"], status="closed")
        (got,) = receiver.wait_for(1)
        assert got.headers["authorization"] == SECRET_HEADER["Authorization"]
        assert got.headers["content-type"] == "application/json"
        event = got.body
        assert set(event) == set(PUBLISHED_MODELS["webhook_events"].fields)
        assert event["api_version"] == "v2.0"
        assert (event["event_type"], event["resource_name"]) == ("update", "RFIs")
        assert (event["resource_id"], event["company_id"], event["project_id"]) == (
            rfi["id"],
            cid,
            pid,
        )
        assert ULID.match(event["ulid"]) and STAMP.match(event["timestamp"])
        assert isinstance(event["id"], int) and isinstance(event["user_id"], int)
        assert set(event["metadata"]) == {
            "source_user_id",
            "source_company_id",
            "source_project_id",
            "source_application_id",
            "source_operation_id",
        }
        wait_until(lambda: len(deliveries(caller, hook)) == 1)
        (delivery,) = deliveries(caller, hook)
        assert set(PUBLISHED_MODELS["webhook_deliveries"].fields) <= set(delivery)
        assert delivery["outcome"] == "ok" and delivery["response_status"] == 204
        assert delivery["event_id"] == event["id"] and delivery["event"] == event

    def test_create_update_delete_in_order(self, caller: Caller, receiver: Receiver) -> None:
        cid = caller.company_id
        pid = caller.sim.state.project_ids(cid)[1]
        subscribe(caller, receiver.url, "Punch Items", "create", "update", "delete")
        created = caller.http.post(
            "/_sim/records/punch_items", json={"company_id": cid, "project_id": pid}
        ).json()
        patch(caller, "punch_items", created["id"], name="Patched")
        assert caller.http.delete(f"/_sim/records/punch_items/{created['id']}").status_code == 204
        events = [r.body for r in receiver.wait_for(3)]
        assert [e["event_type"] for e in events] == ["create", "update", "delete"]
        assert {e["resource_id"] for e in events} == {created["id"]}
        assert {e["project_id"] for e in events} == {pid}
        assert len({e["ulid"] for e in events}) == 3

    def test_company_level_resource_has_no_project(
        self, caller: Caller, receiver: Receiver
    ) -> None:
        subscribe(caller, receiver.url, "Company Users", "update")
        user = caller.sim.state.records("users", caller.company_id)[0]
        caller.sim.state.update_record("users", user["id"], {"job_title": "Estimator"})
        (got,) = receiver.wait_for(1)
        assert got.body["resource_name"] == "Company Users" and got.body["project_id"] is None

    def test_source_metadata_names_the_changing_app(
        self, caller: Caller, receiver: Receiver
    ) -> None:
        subscribe(caller, receiver.url, "Company Vendors", "update")
        vendor = caller.sim.state.records("vendors", caller.company_id)[0]
        caller.http.patch(
            f"/_sim/records/vendors/{vendor['id']}",
            json={"fields": {"notes": "x"}, "source": {"source_application_id": "sim-client-id"}},
        )
        (got,) = receiver.wait_for(1)
        assert got.body["metadata"]["source_application_id"] == "sim-client-id"


class TestMatching:
    def test_only_hooks_with_a_matching_trigger_and_scope_receive(self, caller: Caller) -> None:
        cid = caller.company_id
        first, second = caller.sim.state.project_ids(cid)
        with Receiver() as company_wide, Receiver() as project_only:
            subscribe(caller, company_wide.url, "RFIs", "create")
            subscribe(caller, project_only.url, "RFIs", "update", project_id=second)
            state = caller.sim.state
            state.update_record("rfis", state.records("rfis", cid, first)[0]["id"], {})
            state.update_record("rfis", state.records("rfis", cid, second)[0]["id"], {})
            state.create_record("rfis", cid, first)
            assert [r.body["event_type"] for r in company_wide.wait_for(1)] == ["create"]
            assert [r.body["project_id"] for r in project_only.wait_for(1)] == [second]
            time.sleep(0.3)
            assert len(company_wide.received) == 1 and len(project_only.received) == 1

    def test_a_deleted_hook_gets_nothing_more(self, caller: Caller, receiver: Receiver) -> None:
        cid = caller.company_id
        hook = subscribe(caller, receiver.url, "RFIs", "update")
        call(caller, "DELETE", f"{HOOKS}/{hook['id']}", {"company_id": cid})
        rfi = caller.sim.state.records("rfis", cid)[0]
        caller.sim.state.update_record("rfis", rfi["id"], {})
        time.sleep(0.3)
        assert receiver.received == []


class TestFailures:
    def test_failure_pauses_the_endpoint_and_retries_in_order(
        self, caller: Caller, receiver: Receiver
    ) -> None:
        receiver.answer(500, 503)
        hook = subscribe(caller, receiver.url, "RFIs", "update")
        first, second = caller.sim.state.records("rfis", caller.company_id)[:2]
        caller.sim.state.update_record("rfis", first["id"], {})
        caller.sim.state.update_record("rfis", second["id"], {})
        got = receiver.wait_for(4)
        assert [r.body["resource_id"] for r in got] == [first["id"]] * 3 + [second["id"]]
        wait_until(lambda: len(deliveries(caller, hook)) == 4)
        outcomes = [(d["event"]["resource_id"], d["outcome"]) for d in deliveries(caller, hook)]
        assert outcomes == [
            (first["id"], "failed"),
            (first["id"], "retried"),
            (first["id"], "ok"),
            (second["id"], "ok"),
        ]
        failing = deliveries(caller, hook, **{"filter[status]": "failing"})
        assert [d["response_status"] for d in failing] == [500, 503]
        assert len(deliveries(caller, hook, **{"filter[status]": "successful"})) == 2
        # Backoff: the retries waited at least the base, then twice it.
        gaps = [got[1].at - got[0].at, got[2].at - got[1].at]
        assert gaps[0] >= 0.04 and gaps[1] >= 0.09

    def test_a_slow_receiver_times_out_and_is_retried(
        self, caller: Caller, receiver: Receiver
    ) -> None:
        receiver.answer(delay_s=1.0)
        hook = subscribe(caller, receiver.url, "RFIs", "update")
        rfi = caller.sim.state.records("rfis", caller.company_id)[0]
        caller.sim.state.update_record("rfis", rfi["id"], {})
        wait_until(lambda: len(deliveries(caller, hook)) >= 1)
        failed = deliveries(caller, hook)[0]
        assert failed["outcome"] == "failed" and failed["response_status"] is None
        assert "Timeout" in failed["response_error"]
        receiver.answer()
        wait_until(lambda: deliveries(caller, hook)[-1]["outcome"] == "ok")
        # At least once: the receiver saw the event more than once.
        assert len({r.body["ulid"] for r in receiver.received}) == 1
        assert len(receiver.received) >= 2

    def test_a_receiver_down_for_the_discard_time_loses_the_queue(self) -> None:
        config = SimulatorConfig.lenient(
            companies=1, projects=1, records=5, webhook_discard_after_seconds=0.6, **FAST
        )
        with running(config) as caller, Receiver() as receiver:
            receiver.answer(then=500)
            hook = subscribe(caller, receiver.url, "RFIs", "update")
            first, second = caller.sim.state.records("rfis", caller.company_id)[:2]
            caller.sim.state.update_record("rfis", first["id"], {})
            caller.sim.state.update_record("rfis", second["id"], {})
            discarded = {"filter[status]": "discarded"}
            wait_until(lambda: len(deliveries(caller, hook, **discarded)) == 2)
            assert [d["event"]["resource_id"] for d in deliveries(caller, hook, **discarded)] == [
                first["id"],
                second["id"],
            ]
            assert caller.http.get("/_sim/webhooks/pending").json()["endpoints"] == []
            # A fresh start: the next event is delivered when the receiver is back.
            receiver.answer()
            caller.sim.state.update_record("rfis", first["id"], {"status": "closed"})
            wait_until(lambda: deliveries(caller, hook)[-1]["outcome"] == "ok")


class TestControl:
    def test_forced_retry_pass_skips_the_backoff(self, receiver: Receiver) -> None:
        config = SimulatorConfig.lenient(
            companies=1, projects=1, records=5, webhook_retry_base_seconds=60
        )
        with running(config) as caller:
            receiver.answer(500)
            subscribe(caller, receiver.url, "RFIs", "update")
            rfi = caller.sim.state.records("rfis", caller.company_id)[0]
            caller.sim.state.update_record("rfis", rfi["id"], {})
            receiver.wait_for(1)
            wait_until(lambda: caller.http.get("/_sim/webhooks/pending").json()["endpoints"])
            (queue,) = caller.http.get("/_sim/webhooks/pending").json()["endpoints"]
            assert queue["failures"] == 1 and queue["next_attempt_in"] > 30
            assert [p["event"]["resource_id"] for p in queue["pending"]] == [rfi["id"]]
            forced = caller.http.post("/_sim/webhooks/retry").json()
            assert (forced["attempted"], forced["delivered"]) == (1, 1)
            assert forced["endpoints"] == []
            assert len(receiver.received) == 2

    def test_out_of_order_injection(self, caller: Caller, receiver: Receiver) -> None:
        subscribe(caller, receiver.url, "RFIs", "update")
        assert caller.http.put("/_sim/webhooks/hold", json={"held": True}).status_code == 200
        rfis = caller.sim.state.records("rfis", caller.company_id)[:3]
        for rfi in rfis:
            caller.sim.state.update_record("rfis", rfi["id"], {})
        time.sleep(0.2)
        assert receiver.received == []
        (queue,) = caller.http.get("/_sim/webhooks/pending").json()["endpoints"]
        assert len(queue["pending"]) == 3
        injected = caller.http.post("/_sim/webhooks/inject", json={"mode": "out_of_order"})
        assert injected.json() == {"mode": "out_of_order", "events": 3}
        caller.http.put("/_sim/webhooks/hold", json={"held": False})
        got = receiver.wait_for(3)
        assert [r.body["resource_id"] for r in got] == [r["id"] for r in reversed(rfis)]
        stamps = [r.body["timestamp"] for r in got]
        assert stamps == sorted(stamps, reverse=True)

    def test_duplicate_injection(self, caller: Caller, receiver: Receiver) -> None:
        subscribe(caller, receiver.url, "RFIs", "update")
        caller.http.put("/_sim/webhooks/hold", json={"held": True})
        first, second = caller.sim.state.records("rfis", caller.company_id)[:2]
        caller.sim.state.update_record("rfis", first["id"], {})
        caller.sim.state.update_record("rfis", second["id"], {})
        caller.http.post("/_sim/webhooks/inject", json={"mode": "duplicate"})
        caller.http.put("/_sim/webhooks/hold", json={"held": False})
        got = receiver.wait_for(4)
        ulids = [r.body["ulid"] for r in got]
        assert ulids[0] == ulids[1] != ulids[2] == ulids[3]
        # Nothing pending: the last delivered event goes out once more.
        again = caller.http.post("/_sim/webhooks/inject", json={"mode": "duplicate"}).json()
        assert again["events"] == 1
        assert receiver.wait_for(5)[-1].body == got[-1].body

    def test_unknown_injection_mode_is_400(self, caller: Caller) -> None:
        response = caller.http.post("/_sim/webhooks/inject", json={"mode": "chaos"})
        assert response.status_code == 400

    def test_deliveries_page_by_last_id(self, caller: Caller, receiver: Receiver) -> None:
        hook = subscribe(caller, receiver.url, "RFIs", "update")
        for rfi in caller.sim.state.records("rfis", caller.company_id)[:3]:
            caller.sim.state.update_record("rfis", rfi["id"], {})
        receiver.wait_for(3)
        wait_until(lambda: len(deliveries(caller, hook)) == 3)
        everything = deliveries(caller, hook)
        page = deliveries(caller, hook, page_size=2)
        assert page == everything[:2]
        rest = deliveries(caller, hook, page_size=2, page_start=page[-1]["id"])
        assert rest == everything[2:]
