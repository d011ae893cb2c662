"""Every catalog stream at its exact path and scope serves exactly the ground truth."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from procore_sim import Simulator, SimulatorConfig
from tests.simulator.conftest import ALL_STATUSES, Caller

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

# (stream, path template, scope) exactly as the product's stream table lists them.
# Production reads: all projects, extended commitments, and inactive people from their lists.
CATALOG = [
    ("projects", "/rest/v1.1/projects?company_id={cid}&filters[by_status]=All", "company"),
    ("users", "/rest/v1.3/companies/{cid}/users", "company"),
    ("vendors", "/rest/v1.0/vendors?company_id={cid}", "company"),
    ("rfis", "/rest/v1.0/projects/{pid}/rfis", "project"),
    ("submittals", "/rest/v1.1/projects/{pid}/submittals", "project"),
    ("observations", "/rest/v1.0/observations/items?project_id={pid}", "project"),
    ("punch_items", "/rest/v1.1/punch_items?project_id={pid}", "project"),
    ("change_events", "/rest/v1.0/change_events?project_id={pid}", "project"),
    (
        "work_order_contracts",
        "/rest/v1.0/work_order_contracts?project_id={pid}&view=extended",
        "project",
    ),
    (
        "purchase_order_contracts",
        "/rest/v1.0/purchase_order_contracts?project_id={pid}&view=extended",
        "project",
    ),
    ("prime_contracts", "/rest/v1.0/prime_contracts?project_id={pid}", "project"),
    ("budget_views", "/rest/v1.0/budget_views?project_id={pid}", "project"),
    ("cost_codes", "/rest/v1.0/cost_codes?project_id={pid}", "project"),
    ("documents", "/rest/v1.0/projects/{pid}/documents", "project"),
    ("checklists", "/rest/v1.0/projects/{pid}/checklist/lists", "project"),
    ("timesheets", "/rest/v1.0/projects/{pid}/timesheets", "project"),
]
INACTIVE_LISTS = {
    "users": "/rest/v1.0/companies/{cid}/users/inactive",
    "vendors": "/rest/v1.0/companies/{cid}/vendors/inactive",
}
NO_TIMESTAMPS = {"budget_detail_rows"}


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(companies=2, projects=2, records=30)


class TestCatalog:
    @pytest.mark.parametrize("stream,template,scope", CATALOG)
    def test_stream_serves_ground_truth(
        self, caller: Caller, stream: str, template: str, scope: str
    ) -> None:
        state = caller.sim.state
        for cid in state.company_ids():
            caller.company_id = cid
            for pid in state.project_ids(cid) if scope == "project" else [None]:
                served = caller.get_all(template.format(cid=cid, pid=pid))
                if stream in INACTIVE_LISTS:
                    served += caller.get_all(INACTIVE_LISTS[stream].format(cid=cid))
                    served.sort(key=lambda r: int(r["id"]))
                assert served == state.records(stream, cid, pid)
                assert served, f"{stream} is empty"

    def test_budget_detail_rows_repeat_line_item_ids_in_every_view(self, caller: Caller) -> None:
        state = caller.sim.state
        cid = caller.company_id
        pid = state.project_ids(cid)[0]
        views = state.records("budget_views", cid, pid)
        assert len(views) > 1
        per_view: dict[int, list[dict[str, Any]]] = {}
        for view in views:
            path = f"/rest/v1.0/budget_views/{view['id']}/detail_rows"
            per_view[view["id"]] = caller.get_all(path, project_id=pid)
            assert per_view[view["id"]] == state.records(
                "budget_detail_rows", cid, pid, budget_view_id=view["id"]
            )
        id_lists = [[r["id"] for r in rows] for rows in per_view.values()]
        assert all(ids == id_lists[0] for ids in id_lists), "every view lists every line item"
        assert id_lists[0][-1] is None, "the unbudgeted row has no line item id"
        assert len({i for i in id_lists[0] if i is not None}) == len(id_lists[0]) - 1
        rows = [row for rows in per_view.values() for row in rows]
        assert all("budget_view_id" not in row for row in rows)
        columns = {frozenset(rows[0]) for rows in per_view.values()}
        assert len(columns) == len(views), "each view has its own columns"

    def test_unknown_budget_view_is_404(self, caller: Caller) -> None:
        pid = caller.sim.state.project_ids(caller.company_id)[0]
        response = caller.get("/rest/v1.0/budget_views/1/detail_rows", project_id=pid)
        assert response.status_code == 404

    def test_alternate_paths(self, caller: Caller) -> None:
        cid = caller.company_id
        state = caller.sim.state
        everything = {"filters[by_status]": "All"}
        assert caller.get_all("/rest/v1.0/projects", company_id=cid, **everything) == (
            state.records("projects", cid)
        )
        assert caller.get_all(f"/rest/v1.0/companies/{cid}/projects", **everything) == (
            state.records("projects", cid)
        )
        active_users = [u for u in state.records("users", cid) if u["is_active"]]
        assert caller.get_all("/rest/v1.3/users", company_id=cid) == active_users

    def test_records_have_large_unique_ids_and_utc_timestamps(self, caller: Caller) -> None:
        state = caller.sim.state
        seen: set[int] = set()
        for cid in state.company_ids():
            for stream in state.streams():
                if stream == "budget_detail_rows":
                    continue  # a line item's id repeats in every budget view, by design
                for record in state.records(stream, cid):
                    assert record["id"] not in seen
                    seen.add(record["id"])
                    assert record["id"] > 2**32
                    if stream in NO_TIMESTAMPS:
                        continue
                    assert ISO_Z.match(record["created_at"]), (stream, record)
                    assert ISO_Z.match(record["updated_at"])
                    assert record["updated_at"] >= record["created_at"]
        assert len(seen) > 1000

    def test_field_names_follow_procore(self, caller: Caller) -> None:
        state = caller.sim.state
        cid = caller.company_id
        rfi = state.records("rfis", cid)[0]
        assert {
            "number",
            "subject",
            "status",
            "assignees",
            "ball_in_court",
            "due_date",
            "created_by",
            "deleted",
            "deleted_at",
            "questions",
        } <= set(rfi)
        project = state.records("projects", cid)[0]
        assert {"project_number", "address", "stage", "active", "company"} <= set(project)
        assert project["company"]["id"] == cid


class TestDeterminism:
    def test_same_seed_same_records(self) -> None:
        config = SimulatorConfig(records=20, today=datetime(2025, 6, 1).date())
        first, second = Simulator(config), Simulator(config)
        cid = first.company_ids()[0]
        for stream in first.streams():
            assert first.records(stream, cid) == second.records(stream, cid)

    def test_different_seed_different_records(self) -> None:
        today = datetime(2025, 6, 1).date()
        one = Simulator(SimulatorConfig(records=20, seed=1, today=today))
        two = Simulator(SimulatorConfig(records=20, seed=2, today=today))
        cid = one.company_ids()[0]
        assert one.records("rfis", cid) != two.records("rfis", cid)

    def test_reset_restores_generated_state(self, caller: Caller) -> None:
        state = caller.sim.state
        cid = caller.company_id
        before = state.records("rfis", cid)
        state.delete_record("rfis", before[0]["id"])
        state.uninstall_company(cid)
        assert caller.http.post("/_sim/reset").status_code == 204
        assert state.records("rfis", cid) == before
        assert state.company_status(cid) == "installed"


class TestDailyLogs:
    @pytest.fixture
    def logs(self, caller: Caller) -> tuple[str, list[dict[str, Any]]]:
        pid = caller.sim.state.project_ids(caller.company_id)[0]
        return (
            f"/rest/v1.0/projects/{pid}/manpower_logs",
            caller.sim.state.records("daily_manpower_logs", caller.company_id, pid),
        )

    def test_no_date_means_today_only(self, caller: Caller, logs: Any) -> None:
        path, truth = logs
        today = datetime.now(UTC).date().isoformat()
        served = caller.get_all(path, **ALL_STATUSES)
        assert served and all(r["date"] == today for r in served)
        assert served == [r for r in truth if r["date"] == today]

    def test_logs_spread_over_ninety_days(self, logs: Any) -> None:
        _, truth = logs
        oldest = min(r["date"] for r in truth)
        assert oldest >= (datetime.now(UTC).date() - timedelta(days=91)).isoformat()
        assert len({r["date"] for r in truth}) > 10

    def test_start_and_end_date_window(self, caller: Caller, logs: Any) -> None:
        path, truth = logs
        today = datetime.now(UTC).date()
        start, end = (
            (today - timedelta(days=60)).isoformat(),
            (today - timedelta(days=20)).isoformat(),
        )
        served = caller.get_all(path, start_date=start, end_date=end, **ALL_STATUSES)
        assert served == [r for r in truth if start <= r["date"] <= end]
        assert served

    def test_log_date(self, caller: Caller, logs: Any) -> None:
        path, truth = logs
        day = truth[-1]["date"]
        served = caller.get_all(path, log_date=day, **ALL_STATUSES)
        assert served == [r for r in truth if r["date"] == day]

    def test_bad_date_is_400(self, caller: Caller, logs: Any) -> None:
        path, _ = logs
        assert caller.get(path, log_date="yesterday").status_code == 400
