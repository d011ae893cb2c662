"""Procore-Company-Id, installs, uninstalls, disconnects and permitted projects."""

from __future__ import annotations

import httpx

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.simulator.conftest import Caller, running

NOT_CONNECTED = "App is not connected to this company"


class TestCompanyHeader:
    def test_me_needs_no_company_header(self, caller: Caller) -> None:
        response = caller.get("/rest/v1.0/me", company=None)
        assert response.status_code == 200
        assert {"id", "login", "name"} <= set(response.json())

    def test_missing_header_on_company_endpoint_is_400(self, caller: Caller) -> None:
        response = caller.get("/rest/v1.1/projects", company=None, company_id=caller.company_id)
        assert response.status_code == 400
        assert "Missing Procore-Company-Id header!" in response.text

    def test_non_numeric_header_is_400(self, caller: Caller) -> None:
        response = caller.get("/rest/v1.1/projects", company="acme", company_id=caller.company_id)
        assert response.status_code == 400

    def test_unknown_company_is_403(self, caller: Caller) -> None:
        response = caller.get("/rest/v1.1/projects", company=12345, company_id=12345)
        assert response.status_code == 403
        assert NOT_CONNECTED not in response.text

    def test_project_of_another_company_is_404(self, caller: Caller) -> None:
        other = caller.sim.state.company_ids()[1]
        pid = caller.sim.state.project_ids(other)[0]
        assert caller.get(f"/rest/v1.0/projects/{pid}/rfis").status_code == 404

    def test_missing_project_id_query_is_400(self, caller: Caller) -> None:
        assert caller.get("/rest/v1.0/change_events").status_code == 400


class TestInstallLifecycle:
    def test_uninstall_hides_company_and_answers_not_connected(self, caller: Caller) -> None:
        state = caller.sim.state
        gone = state.company_ids()[1]
        state.uninstall_company(gone)
        listed = caller.get("/rest/v1.0/companies", company=None).json()
        assert [c["id"] for c in listed] == [caller.company_id]
        response = caller.get("/rest/v1.1/projects", company=gone, company_id=gone)
        assert response.status_code == 403
        assert response.json() == {"errors": NOT_CONNECTED}
        assert {c["id"]: c["installed"] for c in state.companies()}[gone] is False

    def test_disconnect_stays_listed_but_answers_not_connected(self, caller: Caller) -> None:
        cid = caller.company_id
        caller.sim.state.disconnect_company(cid)
        listed = caller.get("/rest/v1.0/companies", company=None).json()
        assert cid in [c["id"] for c in listed]
        pid = caller.sim.state.project_ids(cid)[0]
        response = caller.get(f"/rest/v1.0/projects/{pid}/rfis")
        assert response.status_code == 403
        assert NOT_CONNECTED in response.text
        assert {c["id"]: c["connected"] for c in caller.sim.state.companies()}[cid] is False

    def test_reinstall_restores_access(self, caller: Caller) -> None:
        cid = caller.company_id
        caller.http.post(f"/_sim/companies/{cid}/uninstall").raise_for_status()
        assert caller.get("/rest/v1.1/projects", company_id=cid).status_code == 403
        caller.http.post(f"/_sim/companies/{cid}/install").raise_for_status()
        assert caller.get("/rest/v1.1/projects", company_id=cid).status_code == 200

    def test_companies_list_is_paginated(self, caller: Caller) -> None:
        response = caller.get("/rest/v1.0/companies", company=None, per_page=1)
        assert response.status_code == 200
        assert len(response.json()) == 1
        assert response.headers["Total"] == "2"
        assert "next" in response.links


class TestNeverInstalled:
    def test_company_that_never_installed_is_not_listed_and_403(self) -> None:
        config = SimulatorConfig(companies=1, uninstalled_companies=1)
        with SimulatorServer(config) as sim, httpx.Client(base_url=sim.url) as http:
            caller = Caller(http, sim)
            outsider = sim.state.company_ids()[1]
            listed = caller.get("/rest/v1.0/companies", company=None).json()
            assert [c["id"] for c in listed] == [sim.state.company_ids()[0]]
            response = caller.get("/rest/v1.1/projects", company=outsider, company_id=outsider)
            assert response.status_code == 403


class TestPermittedProjects:
    def test_unpermitted_project_vanishes_and_answers_403(self, caller: Caller) -> None:
        cid = caller.company_id
        hidden = caller.sim.state.project_ids(cid)[0]
        caller.sim.state.set_project_permitted(cid, hidden, False)
        listed = caller.get_all(
            "/rest/v1.1/projects", company_id=cid, **{"filters[by_status]": "All"}
        )
        assert hidden not in [p["id"] for p in listed]
        assert len(listed) == 2
        assert caller.get(f"/rest/v1.0/projects/{hidden}/rfis").status_code == 403
        assert caller.get("/rest/v1.0/change_events", project_id=hidden).status_code == 403
        caller.http.put(
            f"/_sim/companies/{cid}/projects/{hidden}/permitted", json={"permitted": True}
        ).raise_for_status()
        assert caller.get(f"/rest/v1.0/projects/{hidden}/rfis").status_code == 200


class TestDisconnectThenReconnect:
    def test_disconnected_company_stays_listed_then_works_again(self, caller: Caller) -> None:
        cid = caller.company_id
        path, params = "/rest/v1.1/projects", {"company_id": cid}
        assert caller.http.post(f"/_sim/companies/{cid}/disconnect").status_code == 200
        refused = caller.get(path, **params)
        assert refused.status_code == 403
        assert refused.json() == {"errors": "App is not connected to this company"}
        listed = caller.get("/rest/v1.0/companies", company=None).json()
        assert cid in [c["id"] for c in listed]
        answer = caller.http.post(f"/_sim/companies/{cid}/reconnect")
        assert answer.json() == {"company_id": cid, "status": "installed"}
        assert caller.get(path, **params).status_code == 200


class TestEmptyCompaniesAnswer:
    def test_one_off_empty_answer(self, caller: Caller) -> None:
        armed = caller.http.post("/_sim/companies/empty_once", json={})
        assert armed.json() == {"empty_answers_pending": 1}
        empty = caller.get("/rest/v1.0/companies", company=None)
        assert empty.status_code == 200 and empty.json() == []
        assert empty.headers["Total"] == "0"
        again = caller.get("/rest/v1.0/companies", company=None).json()
        assert [c["id"] for c in again] == caller.sim.state.company_ids()

    def test_several_empty_answers(self, caller: Caller) -> None:
        caller.http.post("/_sim/companies/empty_once", json={"times": 2})
        answers = [caller.get("/rest/v1.0/companies", company=None).json() for _ in range(3)]
        assert answers[0] == answers[1] == [] and answers[2]


class TestFreeCompanies:
    def test_none_by_default(self, caller: Caller) -> None:
        listed = caller.get("/rest/v1.0/companies", company=None, include_free_companies="true")
        assert len(listed.json()) == 2

    def test_free_companies_need_include_free_companies(self) -> None:
        config = SimulatorConfig.lenient(companies=2, uninstalled_companies=1, free_companies=1)
        with running(config) as caller:
            everyone = caller.sim.state.companies()
            free = [c["id"] for c in everyone if c["free"]]
            assert len(free) == 1 and free[0] == everyone[-1]["id"]
            plain = caller.get("/rest/v1.0/companies", company=None).json()
            assert [c["id"] for c in plain] == [c["id"] for c in everyone[:2]]
            wide = caller.get(
                "/rest/v1.0/companies", company=None, include_free_companies="true"
            ).json()
            assert [c["id"] for c in wide] == [*[c["id"] for c in everyone[:2]], free[0]]
            # A free company is installed: its API answers.
            response = caller.get("/rest/v1.1/projects", company=free[0], company_id=free[0])
            assert response.status_code == 200
