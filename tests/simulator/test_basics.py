"""First-cut behaviour: token, companies, projects, users, RFIs, paging, company header."""

from __future__ import annotations

import httpx

from procore_sim.models import PUBLISHED_MODELS
from procore_sim.server import SimulatorServer
from tests.simulator.conftest import ALL_PROJECTS, Caller


class TestToken:
    def test_client_credentials_form_returns_bearer_token(self, http: httpx.Client) -> None:
        response = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "sim-client-id",
                "client_secret": "sim-client-secret",
            },
        )
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 5400
        assert isinstance(body["created_at"], int)
        assert "refresh_token" not in body

    def test_wrong_secret_is_invalid_client(self, http: httpx.Client) -> None:
        response = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "sim-client-id",
                "client_secret": "nope",
            },
        )
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"


class TestCompanies:
    def test_lists_installed_companies_without_company_header(self, caller: Caller) -> None:
        response = caller.get("/rest/v1.0/companies", company=None)
        assert response.status_code == 200
        companies = response.json()
        assert [c["id"] for c in companies] == caller.sim.state.company_ids()
        assert set(companies[0]) == set(PUBLISHED_MODELS["companies"].fields)
        assert response.headers["Total"] == "2"


class TestProjectsAndRfis:
    def test_projects_match_ground_truth(self, caller: Caller) -> None:
        cid = caller.company_id
        served = caller.get_all("/rest/v1.1/projects", company_id=cid, **ALL_PROJECTS)
        assert served == caller.sim.state.records("projects", cid)
        assert len(served) == 3
        assert all(p["id"] > 2**31 for p in served)

    def test_rfis_page_through_link_next(self, caller: Caller) -> None:
        cid = caller.company_id
        pid = caller.sim.state.project_ids(cid)[0]
        served = caller.get_all(f"/rest/v1.0/projects/{pid}/rfis", per_page=7)
        assert served == caller.sim.state.records("rfis", cid, pid)
        assert len(served) == 50
        assert [r["id"] for r in served] == sorted(r["id"] for r in served)

    def test_users_at_v13_company_path(self, caller: Caller) -> None:
        cid = caller.company_id
        served = caller.get_all(f"/rest/v1.3/companies/{cid}/users")
        assert served == [u for u in caller.sim.state.records("users", cid) if u["is_active"]]

    def test_missing_company_header_is_400(self, caller: Caller, sim: SimulatorServer) -> None:
        pid = sim.state.project_ids(caller.company_id)[0]
        response = caller.get(f"/rest/v1.0/projects/{pid}/rfis", company=None)
        assert response.status_code == 400
        assert "Missing Procore-Company-Id header!" in response.text


class TestControl:
    def test_clients_shape(self, http: httpx.Client) -> None:
        assert http.get("/_sim/clients").json() == {
            "clients": [{"client_id": "sim-client-id", "client_secret": "sim-client-secret"}]
        }
