"""Production defaults (procore-api.md section 11): what a client gets unless it asks right."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from procore_sim import SimulatorConfig
from procore_sim.generate.financial import COMPACT_COMMITMENT_FIELDS
from tests.simulator.conftest import Caller, running


def ids(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["id"]) for r in records]


def now_window() -> str:
    start = datetime.now(UTC) - timedelta(minutes=5)
    end = datetime.now(UTC) + timedelta(minutes=5)
    return f"{start:%Y-%m-%dT%H:%M:%SZ}...{end:%Y-%m-%dT%H:%M:%SZ}"


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig.lenient(companies=1, projects=6, records=30, seed=2)


class TestProjects:
    PATH = "/rest/v1.1/projects"

    def test_generator_makes_inactive_projects(self, caller: Caller) -> None:
        everything = caller.sim.state.records("projects", caller.company_id)
        assert [p["active"] for p in everything] == [True] * 5 + [False]

    def test_default_lists_active_projects_only(self, caller: Caller) -> None:
        cid = caller.company_id
        everything = caller.sim.state.records("projects", cid)
        active = [p for p in everything if p["active"]]
        assert caller.get_all(self.PATH, company_id=cid) == active
        assert caller.get_all("/rest/v1.0/projects", company_id=cid) == active

    @pytest.mark.parametrize("status,want", [("All", None), ("Active", True), ("inactive", False)])
    def test_by_status_filter(self, caller: Caller, status: str, want: bool | None) -> None:
        cid = caller.company_id
        everything = caller.sim.state.records("projects", cid)
        served = caller.get_all(self.PATH, company_id=cid, **{"filters[by_status]": status})
        assert served == [p for p in everything if want is None or p["active"] is want]

    def test_unknown_status_is_422(self, caller: Caller) -> None:
        response = caller.get(
            self.PATH, company_id=caller.company_id, **{"filters[by_status]": "Archived"}
        )
        assert response.status_code == 422
        assert "by_status" in response.json()["errors"]

    def test_deactivated_project_leaves_the_default_list(self, caller: Caller) -> None:
        cid = caller.company_id
        project_id = caller.sim.state.project_ids(cid)[0]
        caller.sim.state.update_record("projects", project_id, {"active": False})
        assert project_id not in ids(caller.get_all(self.PATH, company_id=cid))
        inactive = caller.get_all(self.PATH, company_id=cid, **{"filters[by_status]": "Inactive"})
        assert project_id in ids(inactive)
        # Its records stay readable: inactive is not deleted.
        assert caller.get(f"/rest/v1.0/projects/{project_id}/rfis").status_code == 200

    def test_switch_off_lists_every_project(self) -> None:
        config = SimulatorConfig.lenient(companies=1, projects=4, active_projects_only=False)
        with running(config) as caller:
            served = caller.get_all(self.PATH, company_id=caller.company_id)
            assert len(served) == 4 and not served[-1]["active"]


class TestProjectPaging:
    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        return SimulatorConfig.lenient(companies=1, projects=320, records=1, inactive_projects=0)

    def test_page_size_defaults_to_100_and_caps_at_300(self, caller: Caller) -> None:
        cid = caller.company_id
        default = caller.get("/rest/v1.1/projects", company_id=cid)
        assert default.headers["Per-Page"] == "100" and len(default.json()) == 100
        big = caller.get("/rest/v1.1/projects", company_id=cid, per_page=1000)
        assert big.headers["Per-Page"] == "300" and len(big.json()) == 300
        assert big.headers["Total"] == "320"
        assert "per_page=300" in big.links["next"]["url"]
        assert len(caller.get_all("/rest/v1.1/projects", company_id=cid, per_page=1000)) == 320

    def test_other_lists_keep_the_general_cap(self, caller: Caller) -> None:
        pid = caller.sim.state.project_ids(caller.company_id)[0]
        response = caller.get(f"/rest/v1.0/projects/{pid}/rfis", per_page=1000)
        assert response.headers["Per-Page"] == "1000"


class TestCommitments:
    @pytest.mark.parametrize("stream", ["work_order_contracts", "purchase_order_contracts"])
    def test_compact_unless_view_extended(self, caller: Caller, stream: str) -> None:
        cid = caller.company_id
        pid = caller.sim.state.project_ids(cid)[0]
        truth = caller.sim.state.records(stream, cid, pid)
        compact = caller.get_all(f"/rest/v1.0/{stream}", project_id=pid)
        assert ids(compact) == ids(truth)
        assert all(set(r) <= set(COMPACT_COMMITMENT_FIELDS) for r in compact)
        assert all(set(r["vendor"]) == {"id"} for r in compact)
        assert "grand_total" not in compact[0] and "grand_total" in truth[0]
        explicit = caller.get_all(f"/rest/v1.0/{stream}", project_id=pid, view="compact")
        assert explicit == compact
        assert caller.get_all(f"/rest/v1.0/{stream}", project_id=pid, view="extended") == truth

    def test_compact_view_follows_changes(self, caller: Caller) -> None:
        cid = caller.company_id
        pid = caller.sim.state.project_ids(cid)[0]
        first = caller.sim.state.records("work_order_contracts", cid, pid)[0]
        caller.sim.state.update_record("work_order_contracts", first["id"], {"title": "Renamed"})
        compact = caller.get_all("/rest/v1.0/work_order_contracts", project_id=pid)
        assert compact[0]["title"] == "Renamed"

    def test_deleted_commitments_are_compact_too(self, caller: Caller) -> None:
        cid = caller.company_id
        pid = caller.sim.state.project_ids(cid)[0]
        victim = caller.sim.state.records("purchase_order_contracts", cid, pid)[0]
        caller.sim.state.delete_record("purchase_order_contracts", victim["id"])
        path = "/rest/v1.0/purchase_order_contracts"
        only = caller.get_all(path, project_id=pid, **{"filters[include_deleted]": "only"})
        assert ids(only) == [victim["id"]] and "grand_total" not in only[0]
        assert only[0]["deleted_at"] is not None


class TestManpowerLogs:
    WINDOW = {"start_date": "2000-01-01", "end_date": "2100-01-01"}

    @pytest.fixture
    def logs(self, caller: Caller) -> tuple[str, list[dict[str, Any]]]:
        pid = caller.sim.state.project_ids(caller.company_id)[0]
        truth = caller.sim.state.records("daily_manpower_logs", caller.company_id, pid)
        return f"/rest/v1.0/projects/{pid}/manpower_logs", truth

    def test_generator_makes_pending_logs(self, logs: Any) -> None:
        _, truth = logs
        assert {r["status"] for r in truth} == {"approved", "pending"}

    def test_approved_only_by_default(self, caller: Caller, logs: Any) -> None:
        path, truth = logs
        served = caller.get_all(path, **self.WINDOW)
        assert served == [r for r in truth if r["status"] == "approved"]

    @pytest.mark.parametrize("status", ["pending", "approved", "all"])
    def test_status_filter(self, caller: Caller, logs: Any, status: str) -> None:
        path, truth = logs
        served = caller.get_all(path, **self.WINDOW, **{"filters[status]": status})
        assert served == [r for r in truth if status in ("all", r["status"])]
        assert served

    def test_switch_off_serves_every_status(self) -> None:
        config = SimulatorConfig.lenient(companies=1, projects=1, approved_manpower_only=False)
        with running(config) as caller:
            sim = caller.sim
            pid = sim.state.project_ids(caller.company_id)[0]
            served = caller.get_all(f"/rest/v1.0/projects/{pid}/manpower_logs", **self.WINDOW)
            assert {r["status"] for r in served} == {"approved", "pending"}


class TestInactivePeople:
    LISTS = {
        "users": ("/rest/v1.3/companies/{cid}/users", "/rest/v1.0/companies/{cid}/users/inactive"),
        "vendors": (
            "/rest/v1.0/vendors?company_id={cid}",
            "/rest/v1.0/companies/{cid}/vendors/inactive",
        ),
    }

    @pytest.mark.parametrize("stream", ["users", "vendors"])
    def test_inactive_ones_only_on_their_own_list(self, caller: Caller, stream: str) -> None:
        cid = caller.company_id
        truth = caller.sim.state.records(stream, cid)
        normal, inactive = (p.format(cid=cid) for p in self.LISTS[stream])
        assert caller.get_all(normal) == [r for r in truth if r["is_active"]]
        listed = caller.get_all(inactive)
        assert listed == [r for r in truth if not r["is_active"]]
        assert len(listed) == 3  # every tenth of 30

    @pytest.mark.parametrize("stream", ["users", "vendors"])
    def test_deactivation_moves_a_record_and_updated_at_filters_it(
        self, caller: Caller, stream: str
    ) -> None:
        cid = caller.company_id
        normal, inactive = (p.format(cid=cid) for p in self.LISTS[stream])
        person = caller.sim.state.records(stream, cid)[0]
        window = {"filters[updated_at]": now_window()}
        assert caller.get_all(inactive, **window) == []
        changed = caller.sim.state.update_record(stream, person["id"], {"is_active": False})
        assert person["id"] not in ids(caller.get_all(normal))
        assert caller.get_all(inactive, **window) == [changed]
        assert caller.get_all(inactive, **{"filters[updated_at]": "2001-01-01...2001-01-02"}) == []

    def test_switch_off_keeps_inactive_on_the_normal_list(self) -> None:
        config = SimulatorConfig.lenient(companies=1, projects=1, inactive_on_own_lists=False)
        with running(config) as caller:
            sim = caller.sim
            cid = caller.company_id
            served = caller.get_all(f"/rest/v1.3/companies/{cid}/users")
            assert served == sim.state.records("users", cid)
            assert not all(u["is_active"] for u in served)


class TestBudgetRows:
    def test_a_line_item_change_shows_in_every_view(self, caller: Caller) -> None:
        cid = caller.company_id
        pid = caller.sim.state.project_ids(cid)[0]
        item = caller.sim.state.records("budget_detail_rows", cid, pid)[0]
        caller.sim.state.update_record("budget_detail_rows", item["id"], {"category": "Other"})
        for view in caller.sim.state.records("budget_views", cid, pid):
            rows = caller.get_all(
                f"/rest/v1.0/budget_views/{view['id']}/detail_rows", project_id=pid
            )
            assert [r["category"] for r in rows if r["id"] == item["id"]] == ["Other"]

    def test_legacy_layout_when_switched_off(self) -> None:
        config = SimulatorConfig.lenient(
            companies=1, projects=1, records=20, budget_rows_repeat_ids=False
        )
        with running(config) as caller:
            sim = caller.sim
            cid = caller.company_id
            pid = sim.state.project_ids(cid)[0]
            seen: list[int] = []
            for view in sim.state.records("budget_views", cid, pid):
                path = f"/rest/v1.0/budget_views/{view['id']}/detail_rows"
                rows = caller.get_all(path, project_id=pid)
                assert rows and all(r["budget_view_id"] == view["id"] for r in rows)
                seen += ids(rows)
            assert sorted(seen) == ids(sim.state.records("budget_detail_rows", cid, pid))
