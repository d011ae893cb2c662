"""The connector reads Procore as Procore documents it (issue 13): complete lists, keyed budget
rows, inactive people kept, documented delete signals, a minimal first sync, 408 handling."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import RunningService

DELETE_FEED_MARKERS = ("recycle_bin", "include_deleted", "is_in_recycle_bin", "deleted_at")


def table(url: str, name: str, company_id: int) -> list[dict[str, Any]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.row_factory = sqlite3.Row
        found = db.execute(
            f'SELECT * FROM "{name}" WHERE company_id = ?',  # noqa: S608 - fixed names
            (company_id,),
        ).fetchall()
    return [dict(row) for row in found]


def sync_now(service: RunningService, company_id: int) -> dict[str, Any]:
    answer = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
    assert answer.status_code == 202, answer.text
    return service.wait_for_run(answer.json()["run_id"])


def is_delete_feed(entry: dict[str, Any]) -> bool:
    text = entry["path"] + json.dumps(entry["query"])
    return any(marker in text for marker in DELETE_FEED_MARKERS)


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig.lenient(companies=1, projects=3, records=30, seed=13)


class TestCompleteData:
    def test_inactive_projects_extended_commitments_and_every_manpower_log_land(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        projects = {r["id"] for r in table(destination_url, "projects", company_id)}
        assert projects == {p["id"] for p in sim.state.records("projects", company_id)}
        assert any(not p.get("active", True) for p in sim.state.records("projects", company_id))
        listed = [
            entry
            for entry in sim.state.request_log(path_prefix="/rest/v1.1/projects")
            if entry["status"] == 200 and entry["path"] == "/rest/v1.1/projects"
        ]
        assert listed and all(
            e["query"].get("filters[by_status]") == "All" and int(e["query"]["per_page"]) <= 300
            for e in listed
        )
        for stream in ("work_order_contracts", "purchase_order_contracts"):
            for row in table(destination_url, stream, company_id):
                expected = next(
                    r
                    for p in sim.state.project_ids(company_id)
                    for r in sim.state.records(stream, company_id, p)
                    if r["id"] == row["id"]
                )
                assert set(json.loads(row["data"])) == set(expected), stream  # extended view
        statuses = {
            json.loads(row["data"]).get("status")
            for row in table(destination_url, "daily_manpower_logs", company_id)
        }
        assert len(statuses) > 1  # approved and pending, not approved only

    def test_budget_rows_of_every_view_are_kept_apart_and_say_their_view(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        landed = table(destination_url, "budget_detail_rows", company_id)
        expected: set[tuple[int, int]] = set()
        for project_id in sim.state.project_ids(company_id):
            for view in sim.state.records("budget_views", company_id, project_id):
                rows = sim.state.records(
                    "budget_detail_rows", company_id, project_id, budget_view_id=view["id"]
                )
                expected |= {(view["id"], r["id"]) for r in rows if r["id"] is not None}
        assert {(row["parent_id"], row["id"]) for row in landed} == expected
        ids = [row["id"] for row in landed]
        assert len(ids) > len(set(ids))  # the same line item in several views, not overwritten

    def test_a_deactivated_user_is_kept_and_not_marked_deleted(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        user = next(u for u in sim.state.records("users", company_id) if u.get("is_active"))
        time.sleep(1.1)
        sim.state.update_record("users", user["id"], {"is_active": False})
        run = service.admin.post(
            f"/admin/v1/installations/{company_id}/syncs", json={"full_refresh": True}
        )
        assert service.wait_for_run(run.json()["run_id"])["status"] == "succeeded"
        row = next(r for r in table(destination_url, "users", company_id) if r["id"] == user["id"])
        assert row["deleted_at"] is None
        assert json.loads(row["data"])["is_active"] is False


class TestRequests:
    def test_a_first_sync_reads_no_delete_feed_and_a_later_one_reads_them_filtered(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        first = sim.state.request_log(path_prefix="/rest/")
        assert not [e for e in first if is_delete_feed(e)]
        assert all(e["status"] == 200 for e in first)
        sim.state.clear_request_log()
        assert sync_now(service, company_id)["status"] == "succeeded"
        feeds = [e for e in sim.state.request_log(path_prefix="/rest/") if is_delete_feed(e)]
        assert feeds
        unfiltered = {"/observations/items", "/punch_items/recycle_bin"}  # documented so
        for entry in feeds:
            if not any(entry["path"].endswith(path) for path in unfiltered):
                assert (
                    "filters[updated_at]" in entry["query"]
                    or "filters[deleted_at]" in (entry["query"])
                ), entry

    def test_deletes_arrive_through_recycle_bins_and_filters(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        project_id = sim.state.project_ids(company_id)[0]
        gone = {
            stream: sim.state.records(stream, company_id, project_id)[0]["id"]
            for stream in ("submittals", "documents", "timesheets", "checklists")
        }
        time.sleep(1.1)
        for stream, record_id in gone.items():
            sim.state.delete_record(stream, record_id)
        run = sync_now(service, company_id)
        assert run["status"] == "succeeded", run["error"]
        for stream, record_id in gone.items():
            row = next(
                r for r in table(destination_url, stream, company_id) if r["id"] == record_id
            )
            assert row["deleted_at"] is not None, stream

    def test_a_408_is_read_again_with_smaller_pages(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        sim.state.set_faults(too_large_per_page=100)
        run = service.install_and_sync(company_id)
        assert run["status"] == "succeeded", run["error"]
        expected = {
            r["id"]
            for p in sim.state.project_ids(company_id)
            for r in sim.state.records("rfis", company_id, p)
        }
        assert {r["id"] for r in table(destination_url, "rfis", company_id)} == expected
        refused = sim.state.request_log(path_prefix="/rest/", status=408)
        assert refused  # the fault was hit, and every listing still completed
        # Each refused page was asked again, smaller, at the same place: never unfiltered-bigger.
        for entry in refused:
            retried = [
                e
                for e in sim.state.request_log(path_prefix=entry["path"], status=200)
                if e["time"] > entry["time"] and e["path"] == entry["path"]
            ]
            assert retried and int(retried[0]["query"]["per_page"]) < int(
                entry["query"]["per_page"]
            )
