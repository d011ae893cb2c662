"""Injected faults: latency, 5xx, dropped connections, slow headers and 503 outages."""

from __future__ import annotations

import time

import httpx
import pytest

from procore_sim import SimulatorConfig
from tests.simulator.conftest import Caller, running


def timed(caller: Caller) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = caller.get("/rest/v1.0/companies", company=None)
    return response, time.perf_counter() - started


class TestLatency:
    def test_fixed_latency(self, caller: Caller) -> None:
        caller.sim.state.set_faults(latency_ms=250)
        response, elapsed = timed(caller)
        assert response.status_code == 200
        assert elapsed >= 0.25

    def test_jitter_adds_up_to_its_bound(self, caller: Caller) -> None:
        caller.sim.state.set_faults(latency_ms=50, jitter_ms=100)
        elapsed = [timed(caller)[1] for _ in range(5)]
        assert min(elapsed) >= 0.05
        assert max(elapsed) < 1.0

    def test_slow_headers_trip_a_short_read_timeout(self, caller: Caller) -> None:
        caller.sim.state.set_faults(slow_headers_ms=600)
        with pytest.raises(httpx.ReadTimeout):
            caller.http.get(
                "/rest/v1.0/companies",
                headers=caller.headers(None),
                timeout=httpx.Timeout(5, read=0.2),
            )
        response, elapsed = timed(caller)
        assert response.status_code == 200
        assert elapsed >= 0.6


class TestErrors:
    def test_error_rate_one_always_fails_with_status(self, caller: Caller) -> None:
        caller.sim.state.set_faults(error_rate=1.0, error_status=502)
        response = caller.get("/rest/v1.0/companies", company=None)
        assert response.status_code == 502
        assert "X-Rate-Limit-Limit" in response.headers

    def test_error_rate_is_a_fraction(self, caller: Caller) -> None:
        caller.sim.state.set_faults(error_rate=0.5)
        statuses = [caller.get("/rest/v1.0/companies", company=None).status_code for _ in range(40)]
        assert 5 <= statuses.count(500) <= 35
        assert statuses.count(200) + statuses.count(500) == 40

    def test_unavailable_is_503_with_retry_after(self, caller: Caller) -> None:
        caller.http.put("/_sim/faults", json={"unavailable": True, "retry_after": 7})
        response = caller.get("/rest/v1.0/companies", company=None)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "7"
        caller.http.put("/_sim/faults", json={})
        assert caller.get("/rest/v1.0/companies", company=None).status_code == 200

    def test_faults_never_touch_the_control_api(self, caller: Caller) -> None:
        caller.sim.state.set_faults(error_rate=1.0, unavailable=True)
        assert caller.http.get("/_sim/clients").status_code == 200

    def test_path_prefix_limits_faults(self, caller: Caller) -> None:
        caller.sim.state.set_faults(error_rate=1.0, path_prefix="/rest/v1.1/")
        assert caller.get("/rest/v1.0/companies", company=None).status_code == 200
        cid = caller.company_id
        assert caller.get("/rest/v1.1/projects", company_id=cid).status_code == 500


class TestDroppedConnections:
    def test_drop_closes_socket_without_response(self, caller: Caller) -> None:
        caller.sim.state.set_faults(drop_rate=1.0)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            caller.get("/rest/v1.0/companies", company=None)
        entry = caller.sim.state.request_log(path_prefix="/rest/")[-1]
        assert entry["dropped"] is True
        assert entry["status"] == 0

    def test_server_keeps_serving_after_drops(self, caller: Caller) -> None:
        caller.sim.state.set_faults(drop_rate=1.0)
        for _ in range(3):
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                caller.get("/rest/v1.0/companies", company=None)
        caller.sim.state.set_faults()
        assert caller.get("/rest/v1.0/companies", company=None).status_code == 200

    def test_drop_rate_fraction(self, caller: Caller) -> None:
        caller.sim.state.set_faults(drop_rate=0.3)
        dropped = 0
        for _ in range(30):
            try:
                caller.get("/rest/v1.0/companies", company=None)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                dropped += 1
        assert 2 <= dropped <= 20


class TestRequestTooLarge:
    def test_unfiltered_big_page_is_408_filtered_or_small_is_served(self, caller: Caller) -> None:
        pid = caller.sim.state.project_ids(caller.company_id)[0]
        path = f"/rest/v1.0/projects/{pid}/rfis"
        assert caller.get(path, per_page=500).status_code == 200
        caller.http.put("/_sim/faults", json={"too_large_per_page": 100})
        refused = caller.get(path, per_page=500)
        assert refused.status_code == 408
        assert "too long" in refused.json()["errors"]
        assert caller.get(path, per_page=100).status_code == 200
        window = {"filters[updated_at]": "2000-01-01...2100-01-01"}
        assert caller.get(path, per_page=500, **window).status_code == 200
        caller.http.put("/_sim/faults", json={})
        assert caller.get(path, per_page=500).status_code == 200

    def test_configured_threshold(self) -> None:
        config = SimulatorConfig.lenient(companies=1, projects=1, too_large_per_page=50)
        with running(config) as caller:
            pid = caller.sim.state.project_ids(caller.company_id)[0]
            response = caller.get(f"/rest/v1.0/projects/{pid}/rfis", per_page=51)
            assert response.status_code == 408
