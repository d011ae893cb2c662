"""Rate limits: hourly and spike windows per app and company, headers, 429 + Retry-After."""

from __future__ import annotations

import time

import httpx
import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.simulator.conftest import Caller, fetch_token


class TestHeaders:
    def test_every_rest_answer_carries_rate_headers(self, caller: Caller) -> None:
        pid = caller.sim.state.project_ids(caller.company_id)[0]
        answers = [
            caller.get(f"/rest/v1.0/projects/{pid}/rfis"),
            caller.get(f"/rest/v1.0/projects/{pid}/rfis", company=None),
            caller.get("/rest/v1.1/projects", company=999, company_id=999),
            caller.http.get("/rest/v1.0/companies", headers={"Authorization": "Bearer x"}),
        ]
        assert [a.status_code for a in answers] == [200, 400, 403, 401]
        now = time.time()
        for answer in answers:
            assert int(answer.headers["X-Rate-Limit-Limit"]) > 0
            assert int(answer.headers["X-Rate-Limit-Remaining"]) >= 0
            assert now - 5 < int(answer.headers["X-Rate-Limit-Reset"]) < now + 3700

    def test_control_api_has_no_rate_headers(self, http: httpx.Client) -> None:
        assert "X-Rate-Limit-Limit" not in http.get("/_sim/clients").headers

    def test_headers_describe_the_nearer_window(self, caller: Caller) -> None:
        caller.sim.state.set_limits(hourly=1000, spike=5)
        spike = caller.get("/rest/v1.0/companies", company=None)
        assert spike.headers["X-Rate-Limit-Limit"] == "5"
        assert spike.headers["X-Rate-Limit-Remaining"] == "4"
        assert int(spike.headers["X-Rate-Limit-Reset"]) <= time.time() + 11
        caller.sim.state.set_limits(hourly=3, spike=100)
        hourly = caller.get("/rest/v1.0/companies", company=None)
        assert hourly.headers["X-Rate-Limit-Limit"] == "3"
        assert hourly.headers["X-Rate-Limit-Remaining"] == "2"
        assert int(hourly.headers["X-Rate-Limit-Reset"]) > time.time() + 3000


class TestWindows:
    def test_spike_window_spent_gives_429_with_retry_after(self, caller: Caller) -> None:
        caller.sim.state.set_limits(spike=5)
        path, params = "/rest/v1.1/projects", {"company_id": caller.company_id}
        statuses = [caller.get(path, **params).status_code for _ in range(5)]
        assert statuses == [200] * 5
        refused = caller.get(path, **params)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 10
        assert refused.headers["X-Rate-Limit-Remaining"] == "0"
        assert "surpassed" in refused.text

    def test_spike_window_reopens(self, caller: Caller) -> None:
        caller.sim.state.set_limits(spike=2, spike_window_seconds=1)
        for _ in range(2):
            assert caller.get("/rest/v1.0/companies", company=None).status_code == 200
        assert caller.get("/rest/v1.0/companies", company=None).status_code == 429
        time.sleep(1.1)
        assert caller.get("/rest/v1.0/companies", company=None).status_code == 200

    def test_hourly_window_spent_retry_after_is_long(self, caller: Caller) -> None:
        caller.sim.state.set_limits(hourly=3, spike=100)
        for _ in range(3):
            assert caller.get("/rest/v1.0/companies", company=None).status_code == 200
        refused = caller.get("/rest/v1.0/companies", company=None)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 3000

    def test_each_company_has_its_own_bucket(self, caller: Caller) -> None:
        caller.sim.state.set_limits(spike=3)
        first, second = caller.sim.state.company_ids()
        for _ in range(3):
            assert caller.get("/rest/v1.1/projects", company_id=first).status_code == 200
        assert caller.get("/rest/v1.1/projects", company_id=first).status_code == 429
        other = caller.get("/rest/v1.1/projects", company=second, company_id=second)
        assert other.status_code == 200
        assert other.headers["X-Rate-Limit-Remaining"] == "2"

    def test_refused_requests_do_not_count_and_control_is_free(self, caller: Caller) -> None:
        caller.http.put("/_sim/limits", json={"spike": 1, "spike_window_seconds": 1})
        assert caller.get("/rest/v1.0/companies", company=None).status_code == 200
        for _ in range(3):
            assert caller.get("/rest/v1.0/companies", company=None).status_code == 429
            assert caller.http.get("/_sim/companies").status_code == 200
        time.sleep(1.1)
        assert caller.get("/rest/v1.0/companies", company=None).status_code == 200

    def test_token_endpoint_is_not_rate_limited(self, caller: Caller) -> None:
        caller.sim.state.set_limits(spike=1)
        for _ in range(3):
            fetch_token(caller.http)


class TestPerApp:
    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        return SimulatorConfig(extra_clients=(("second-app", "second-secret"),))

    def test_each_client_has_its_own_bucket(self, caller: Caller, sim: SimulatorServer) -> None:
        sim.state.set_limits(spike=2)
        for _ in range(2):
            caller.get("/rest/v1.0/companies", company=None)
        assert caller.get("/rest/v1.0/companies", company=None).status_code == 429
        other = fetch_token(caller.http, "second-app", "second-secret")
        response = caller.http.get(
            "/rest/v1.0/companies", headers={"Authorization": f"Bearer {other}"}
        )
        assert response.status_code == 200
        assert len(caller.http.get("/_sim/clients").json()["clients"]) == 2


class TestProductionDefaults:
    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        return SimulatorConfig(companies=1, projects=1, records=5)

    def test_documented_limits_by_default(self, caller: Caller) -> None:
        assert (SimulatorConfig().hourly_limit, SimulatorConfig().spike_limit) == (3600, 25)
        first = caller.get("/rest/v1.0/companies", company=None)
        assert first.headers["X-Rate-Limit-Limit"] == "25"
        assert first.headers["X-Rate-Limit-Remaining"] == "24"
        statuses = [caller.get("/rest/v1.0/companies", company=None).status_code for _ in range(24)]
        assert statuses == [200] * 24
        refused = caller.get("/rest/v1.0/companies", company=None)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 10

    def test_headers_switch_to_the_hourly_window_near_its_end(self, caller: Caller) -> None:
        caller.sim.state.set_limits(hourly=30, spike=25, spike_window_seconds=60)
        for _ in range(10):
            caller.get("/rest/v1.0/companies", company=None)
        spike = caller.get("/rest/v1.0/companies", company=None)
        assert (spike.headers["X-Rate-Limit-Limit"], spike.headers["X-Rate-Limit-Remaining"]) == (
            "25",
            "14",
        )
        caller.sim.state.set_limits(hourly=12, spike=25, spike_window_seconds=60)
        for _ in range(5):
            caller.get("/rest/v1.0/companies", company=None)
        hourly = caller.get("/rest/v1.0/companies", company=None)
        assert (hourly.headers["X-Rate-Limit-Limit"], hourly.headers["X-Rate-Limit-Remaining"]) == (
            "12",
            "6",
        )


class TestRollingSpikeWindow:
    def test_a_slot_frees_when_its_request_leaves_the_window(self, caller: Caller) -> None:
        # 5 per rolling 2 s: 3 requests, a pause, 2 more; when the first 3 leave the window,
        # exactly 3 slots free (a fixed window would free all 5 at once).
        caller.sim.state.set_limits(spike=5, spike_window_seconds=2)
        path = "/rest/v1.0/companies"
        assert [caller.get(path, company=None).status_code for _ in range(3)] == [200] * 3
        first_done = time.monotonic()
        time.sleep(1.0)
        assert [caller.get(path, company=None).status_code for _ in range(2)] == [200] * 2
        refused = caller.get(path, company=None)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) <= 2
        time.sleep(max(first_done + 2.1 - time.monotonic(), 0))
        after = [caller.get(path, company=None).status_code for _ in range(4)]
        assert after == [200, 200, 200, 429]

    def test_remaining_rises_as_the_window_rolls(self, caller: Caller) -> None:
        caller.sim.state.set_limits(spike=4, spike_window_seconds=1)
        path = "/rest/v1.0/companies"
        for _ in range(3):
            caller.get(path, company=None)
        time.sleep(1.1)
        response = caller.get(path, company=None)
        assert response.headers["X-Rate-Limit-Remaining"] == "3"
