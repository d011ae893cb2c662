"""Sync semantics end to end through the simulator: cursors, deletes, permissions, guard."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import RunningService, install_event, wait_until


def rows(url: str, table: str, company_id: int) -> dict[int, dict[str, Any]]:
    """Destination rows of one table and company, keyed by id."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        db.row_factory = sqlite3.Row
        found = db.execute(
            f'SELECT * FROM "{table}" WHERE company_id = ?',  # noqa: S608 - fixed names
            (company_id,),
        ).fetchall()
    return {row["id"]: dict(row) for row in found}


def sync_now(service: RunningService, company_id: int, **body: Any) -> dict[str, Any]:
    """Queues a run through the admin API and waits for it."""
    answer = service.admin.post(f"/admin/v1/installations/{company_id}/syncs", json=body or None)
    assert answer.status_code == 202, answer.text
    return service.wait_for_run(answer.json()["run_id"])


def delete_a_user_then_fault_change_events(
    service: RunningService, sim: SimulatorServer, *, status: int
) -> tuple[int, dict[str, Any]]:
    """Syncs a company, deletes one of its users in Procore, then makes change events answer
    `status`; returns the company and the deleted user."""
    company_id = sim.state.company_ids()[0]
    assert service.install_and_sync(company_id)["status"] == "succeeded"
    user = sim.state.records("users", company_id)[0]
    sim.state.delete_record("users", user["id"])
    sim.state.set_faults(
        error_rate=1.0, error_status=status, path_prefix="/rest/v1.0/change_events"
    )
    return company_id, user


class TestFullCatalog:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {}

    def test_every_stream_lands_exactly_the_simulators_records(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[1]
        run = service.install_and_sync(company_id)
        assert run["status"] == "succeeded", run["error"]
        for stream in sim.state.streams():
            if stream == "companies":
                continue
            expected: set[int] = set()
            if stream in ("projects", "users", "vendors"):
                expected = {r["id"] for r in sim.state.records(stream, company_id)}
            else:
                for project_id in sim.state.project_ids(company_id):
                    expected |= {r["id"] for r in sim.state.records(stream, company_id, project_id)}
            landed = rows(destination_url, stream, company_id)
            expected.discard(None)  # type: ignore[arg-type]  # unbudgeted budget rows: no id
            if stream == "daily_manpower_logs":
                assert set(landed) <= expected and landed, stream  # only the history window
            else:
                assert set(landed) == expected, stream
        other = sim.state.company_ids()[0]
        assert rows(destination_url, "projects", other) == {}  # one company's data only


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"streams": "projects,users,rfis,change_events", "full_listing_interval_seconds": 0}


class TestIncrementalAndDeletes:
    def test_updates_creates_and_deletes_between_runs(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        project_id = sim.state.project_ids(company_id)[0]
        rfis = sim.state.records("rfis", company_id, project_id)
        users = sim.state.records("users", company_id)
        events = sim.state.records("change_events", company_id, project_id)
        time.sleep(1.1)
        sim.state.update_record("rfis", rfis[0]["id"], {"subject": "edited"})
        created = sim.state.create_record("rfis", company_id, project_id, None)
        sim.state.delete_record("rfis", rfis[1]["id"])
        sim.state.delete_record("users", users[0]["id"])
        sim.state.delete_record("change_events", events[0]["id"])

        run = sync_now(service, company_id)
        assert run["status"] == "succeeded", run["error"]
        landed = rows(destination_url, "rfis", company_id)
        assert json.loads(landed[rfis[0]["id"]]["data"])["subject"] == "edited"
        assert created["id"] in landed
        assert landed[rfis[1]["id"]]["deleted_at"] is not None  # recycle bin
        assert landed[rfis[2]["id"]]["deleted_at"] is None
        assert rows(destination_url, "users", company_id)[users[0]["id"]]["deleted_at"]  # id diff
        assert rows(destination_url, "change_events", company_id)[events[0]["id"]]["deleted_at"]
        assert run["streams"]["rfis"]["records_deleted"] == 1
        assert run["streams"]["users"]["records_deleted"] == 1

    def test_no_change_incremental_run_writes_nothing(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        run = sync_now(service, company_id)
        assert run["status"] == "succeeded"
        assert run["streams"]["rfis"]["records_written"] == 0
        assert run["streams"]["change_events"]["records_written"] == 0

    def test_a_failed_stream_does_not_hold_back_another_streams_deletes(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id, user = delete_a_user_then_fault_change_events(service, sim, status=422)
        run = sync_now(service, company_id)
        assert run["status"] == "failed"
        assert run["streams"]["users"]["status"] == "succeeded"
        assert run["streams"]["change_events"]["status"] == "failed"
        assert "change_events" in run["error"]
        # The users listing was complete: its delete lands although change_events failed.
        assert rows(destination_url, "users", company_id)[user["id"]]["deleted_at"] is not None

        sim.state.set_faults()
        run = sync_now(service, company_id)
        assert run["status"] == "succeeded", run["error"]
        assert run["streams"]["users"]["records_deleted"] == 0  # not marked a second time

    def test_a_tool_forbidden_in_a_project_skips_it_and_the_run_goes_on(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id, user = delete_a_user_then_fault_change_events(service, sim, status=403)
        run = sync_now(service, company_id)
        assert run["status"] == "succeeded", run["error"]
        events = run["streams"]["change_events"]
        assert events["status"] == "skipped" and "skipped" in events["note"]
        assert rows(destination_url, "users", company_id)[user["id"]]["deleted_at"] is not None

    def test_project_leaving_permitted_list_is_flagged_and_kept(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        gone = sim.state.project_ids(company_id)[0]
        kept_rfis = {r["id"] for r in sim.state.records("rfis", company_id, gone)}
        sim.state.set_project_permitted(company_id, gone, False)
        sim.state.clear_request_log()

        run = sync_now(service, company_id)
        assert run["status"] == "succeeded", run["error"]
        assert run["missing_projects"] == [gone]
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert inst["missing_projects"] == [gone]
        landed = rows(destination_url, "rfis", company_id)
        assert kept_rfis <= set(landed)
        assert all(landed[i]["deleted_at"] is None for i in kept_rfis)
        assert not [e for e in sim.state.request_log() if str(gone) in e["path"]]

        sim.state.set_project_permitted(company_id, gone, True)
        run = sync_now(service, company_id)
        assert run["missing_projects"] == []


class TestDeleteGuard:
    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        return SimulatorConfig.lenient(companies=1, projects=1, records=40, seed=5)

    def test_mass_delete_is_refused_and_reported(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        users = sim.state.records("users", company_id)
        for user in users[: int(len(users) * 0.75)]:
            sim.state.delete_record("users", user["id"])
        run = sync_now(service, company_id)
        assert run["streams"]["users"]["delete_guard"]
        assert run["streams"]["users"]["records_deleted"] == 0
        landed = rows(destination_url, "users", company_id)
        assert all(row["deleted_at"] is None for row in landed.values())


class TestManyInstallations:
    def test_two_companies_sync_at_once_into_one_destination(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        first, second = sim.state.company_ids()[:2]
        sim.state.set_faults(latency_ms=20)  # long enough that two runs must overlap
        for company_id in (first, second):
            assert (
                service.callback(
                    {"type": "installation.created", "data": {"company_id": company_id}}
                ).status_code
                == 202
            )
        runs = [service.wait_for_run(service.latest_run_id(c)) for c in (first, second)]
        assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
        started = sorted((r["started_at"], r["finished_at"]) for r in runs)
        assert started[1][0] < started[0][1], "the two runs did not overlap"
        for company_id in (first, second):
            expected = {
                r["id"]
                for p in sim.state.project_ids(company_id)
                for r in sim.state.records("rfis", company_id, p)
            }
            assert set(rows(destination_url, "rfis", company_id)) == expected


class TestInstallationState:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"streams": "projects,rfis"}

    def test_detail_shows_cursor_last_success_and_records_per_stream(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        run = service.install_and_sync(company_id)
        detail = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        rfis = detail["stream_state"]["rfis"]
        written = run["streams"]["rfis"]["records_written"]
        assert rfis["records_written_total"] == rfis["records_written_last_run"] == written > 0
        assert rfis["rows_in_destination"] == written  # a first full run: one write per row
        assert rfis["projects"] == len(sim.state.project_ids(company_id))
        assert rfis["cursor"] is not None and rfis["last_success_at"] is not None
        per_project = rfis["units"]
        assert sum(s["records_written_total"] for s in per_project) == written
        assert "stream_states" not in detail
        assert detail["last_run"]["run_id"] == run["run_id"]


class TestDestinationErrors:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"streams": "projects,rfis"}

    def test_a_destination_refusing_rows_fails_the_stream_once(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        with sqlite3.connect(destination_url.removeprefix("sqlite:///")) as db:
            db.execute(
                "CREATE TABLE rfis (company_id BIGINT NOT NULL, id BIGINT NOT NULL, "
                "project_id BIGINT, updated_at DATETIME, deleted_at DATETIME, synced_at DATETIME,"
                " data JSON, PRIMARY KEY (company_id, id), CHECK (id < 0))"
            )
        company_id = sim.state.company_ids()[0]
        run = service.install_and_sync(company_id)
        assert run["status"] == "failed"
        assert run["attempts"] == 1
        assert "rfis" in run["error"] and "CHECK constraint failed" in run["error"]
        assert run["streams"]["projects"]["status"] == "succeeded"


class TestDestinationChange:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"streams": "projects,rfis"}

    def test_a_new_destination_gets_everything_not_only_changes(
        self, service: RunningService, sim: SimulatorServer, tmp_path: Any
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        second = f"sqlite:///{tmp_path / 'second.db'}"
        path = f"/admin/v1/installations/{company_id}"
        assert service.admin.patch(path, json={"destination_url": second}).status_code == 200
        run = sync_now(service, company_id)  # an ordinary run, not a full refresh
        assert run["status"] == "succeeded", run["error"]
        expected = {
            r["id"]
            for p in sim.state.project_ids(company_id)
            for r in sim.state.records("rfis", company_id, p)
        }
        assert set(rows(second, "rfis", company_id)) == expected
        assert len(rows(second, "projects", company_id)) == len(sim.state.project_ids(company_id))


class TestDestinationChangeDuringARun:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"streams": "projects,rfis,submittals,punch_items", "heartbeat_seconds": 0.2}

    def test_the_running_sync_is_fenced_and_the_new_destination_gets_a_complete_copy(
        self, service: RunningService, sim: SimulatorServer, tmp_path: Any
    ) -> None:
        company_id = sim.state.company_ids()[0]
        sim.state.set_faults(latency_ms=120)
        assert service.callback(install_event(company_id)).status_code == 202
        first = service.latest_run_id(company_id)
        wait_until(
            lambda: service.admin.get(f"/admin/v1/syncs/{first}").json()["records"] > 0,
            message="the first run wrote some records",
        )
        second = f"sqlite:///{tmp_path / 'second.db'}"
        path = f"/admin/v1/installations/{company_id}"
        assert service.admin.patch(path, json={"destination_url": second}).status_code == 200
        fenced = service.wait_for_run(first)
        assert fenced["status"] == "cancelled", fenced
        assert "destination changed" in fenced["error"]
        sim.state.set_faults()
        # The refill is queued at once (an ordinary run, not a full refresh).
        wait_until(lambda: service.latest_run_id(company_id) != first, message="a refill run")
        run = service.wait_for_run(service.latest_run_id(company_id))
        assert run["trigger"] == "destination_change" and not run["full_refresh"]
        assert run["status"] == "succeeded", run["error"]
        for stream in ("rfis", "submittals", "punch_items"):
            expected = {
                r["id"]
                for p in sim.state.project_ids(company_id)
                for r in sim.state.records(stream, company_id, p)
            }
            assert set(rows(second, stream, company_id)) == expected, stream


class TestStreamSelectionChange:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"streams": "rfis"}

    def test_selecting_projects_later_still_writes_every_project(
        self, service: RunningService, sim: SimulatorServer, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        path = f"/admin/v1/installations/{company_id}"
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        assert rows(destination_url, "rfis", company_id)
        service.admin.patch(path, json={"streams": "projects,rfis"})
        assert sync_now(service, company_id)["status"] == "succeeded"
        landed = rows(destination_url, "projects", company_id)
        assert len(landed) == len(sim.state.project_ids(company_id))
