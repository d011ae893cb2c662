"""The /_sim/ control API over HTTP, and the Simulator methods behind it."""

from __future__ import annotations

import httpx

from tests.simulator.conftest import Caller


class TestRecordsApi:
    def test_companies_with_status_and_projects(self, http: httpx.Client,
                                                caller: Caller) -> None:
        companies = http.get("/_sim/companies").json()["companies"]
        assert [c["id"] for c in companies] == caller.sim.state.company_ids()
        first = companies[0]
        assert first["installed"] is True and first["connected"] is True
        assert first["project_ids"] == caller.sim.state.project_ids(first["id"])

    def test_ground_truth_records(self, http: httpx.Client, caller: Caller) -> None:
        cid = caller.company_id
        pid = caller.sim.state.project_ids(cid)[0]
        body = http.get("/_sim/records/rfis",
                        params={"company_id": cid, "project_id": pid}).json()
        assert body["records"] == caller.get_all(f"/rest/v1.0/projects/{pid}/rfis")
        assert body["count"] == 50
        everything = http.get("/_sim/records/rfis", params={"company_id": cid}).json()
        assert everything["count"] == 150

    def test_create_update_delete_round_trip(self, http: httpx.Client,
                                             caller: Caller) -> None:
        cid = caller.company_id
        pid = caller.sim.state.project_ids(cid)[0]
        path = f"/rest/v1.0/projects/{pid}/rfis"
        created = http.post("/_sim/records/rfis", json={
            "company_id": cid, "project_id": pid, "fields": {"subject": "New RFI"}})
        assert created.status_code == 201
        record = created.json()
        assert record["subject"] == "New RFI"
        assert record["created_at"] == record["updated_at"]
        served = caller.get_all(path)
        assert served[-1] == record
        assert record["id"] > max(r["id"] for r in served[:-1])

        patched = http.patch(f"/_sim/records/rfis/{record['id']}",
                             json={"fields": {"status": "closed"}})
        assert patched.status_code == 200
        assert caller.get_all(path)[-1]["status"] == "closed"

        assert http.delete(f"/_sim/records/rfis/{record['id']}").status_code == 204
        assert record["id"] not in [r["id"] for r in caller.get_all(path)]
        binned = caller.get_all(f"{path}/recycle_bin")
        assert [r["id"] for r in binned] == [record["id"]]

    def test_update_bumps_updated_at(self, caller: Caller) -> None:
        state = caller.sim.state
        original = state.records("vendors", caller.company_id)[0]
        changed = state.update_record("vendors", original["id"], {"name": "Renamed LLC"})
        assert changed["updated_at"] > original["updated_at"]
        assert changed["created_at"] == original["created_at"]

    def test_unknown_stream_and_record_are_404(self, http: httpx.Client) -> None:
        assert http.get("/_sim/records/nope", params={"company_id": 1}).status_code == 404
        assert http.patch("/_sim/records/rfis/123", json={}).status_code == 404
        assert http.delete("/_sim/records/rfis/123").status_code == 404

    def test_created_project_gets_empty_streams(self, caller: Caller) -> None:
        cid = caller.company_id
        project = caller.sim.state.create_record("projects", cid, None, {"name": "Annex"})
        assert project["id"] in caller.sim.state.project_ids(cid)
        listed = caller.get_all("/rest/v1.1/projects", company_id=cid)
        assert listed[-1]["name"] == "Annex"
        rfi = caller.sim.state.create_record("rfis", cid, project["id"])
        assert caller.get_all(f"/rest/v1.0/projects/{project['id']}/rfis") == [rfi]


class TestSettingsApi:
    def test_limits_faults_and_token_lifetime(self, http: httpx.Client,
                                              caller: Caller) -> None:
        assert http.put("/_sim/limits", json={"hourly": 10, "spike": 4}).json()["spike"] == 4
        assert caller.sim.state.limiter.hourly_limit == 10
        faults = http.put("/_sim/faults", json={"latency_ms": 5, "error_rate": 0.1}).json()
        assert faults["latency_ms"] == 5
        assert http.put("/_sim/faults", json={"bogus": 1}).status_code == 400
        assert http.put("/_sim/token_lifetime", json={"seconds": 60}).status_code == 200
        grant = {"grant_type": "client_credentials", "client_id": "sim-client-id",
                 "client_secret": "sim-client-secret"}
        assert http.post("/oauth/token", data=grant).json()["expires_in"] == 60


class TestRequestLog:
    def test_entries_and_filters(self, http: httpx.Client, caller: Caller) -> None:
        cid = caller.company_id
        caller.get("/rest/v1.1/projects", company_id=cid, per_page=5)
        caller.get("/rest/v1.1/projects", company=None, company_id=cid)
        http.get("/_sim/companies")
        log = caller.sim.state.request_log()
        assert [e["path"] for e in log] == ["/oauth/token", "/rest/v1.1/projects",
                                            "/rest/v1.1/projects"]
        entry = log[1]
        assert entry["method"] == "GET"
        assert entry["query"] == {"company_id": str(cid), "per_page": "5"}
        assert entry["status"] == 200
        assert entry["company_header"] == str(cid)
        assert entry["authorized"] is True
        assert isinstance(entry["time"], float)
        assert log[0]["authorized"] is True
        assert [e["status"] for e in caller.sim.state.request_log(company_id=cid)] == [200]
        over_http = http.get("/_sim/requests", params={"status": 400}).json()["requests"]
        assert len(over_http) == 1 and over_http[0]["company_header"] is None
        assert len(http.get("/_sim/requests", params={"path": "/rest/"}).json()[
            "requests"]) == 2

    def test_unauthorized_calls_are_logged_as_such(self, http: httpx.Client,
                                                   caller: Caller) -> None:
        http.get("/rest/v1.0/companies")
        assert caller.sim.state.request_log(status=401)[0]["authorized"] is False

    def test_clear(self, http: httpx.Client, caller: Caller) -> None:
        assert caller.sim.state.request_log()
        assert http.delete("/_sim/requests").status_code == 204
        assert caller.sim.state.request_log() == []
