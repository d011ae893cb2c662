"""The request budget (learned limit, stalest units first, the rest deferred and continued)
and reconciliation of covered streams (only due units, and what events missed)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import execute, query_rows
from tests.webhooks.conftest import HookedService, rows, wait_for

LONG_AGO = datetime(2001, 1, 1)


def naive(value: Any) -> datetime | None:
    """A stored time as naive UTC (SQLite answers text, PostgreSQL an aware datetime)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def unit_cursor(database_url: str, company_id: int, stream: str, project_id: int) -> Any:
    found = query_rows(
        database_url,
        "SELECT cursor FROM stream_states WHERE company_id = :cid AND stream = :s "
        "AND project_id = :p",
        cid=company_id,
        s=stream,
        p=project_id,
    )
    return naive(found[0][0]) if found else None


def covered_since(database_url: str, company_id: int, when: datetime) -> None:
    """Pretends every covered stream has been covered since `when`."""
    found = query_rows(
        database_url,
        "SELECT covered FROM webhook_subscriptions WHERE company_id = :cid",
        cid=company_id,
    )
    stored = found[0][0]
    covered = json.loads(stored) if isinstance(stored, str) else stored
    since = when.replace(tzinfo=UTC).isoformat()
    execute(
        database_url,
        "UPDATE webhook_subscriptions SET covered = :c WHERE company_id = :cid",
        c=json.dumps(dict.fromkeys(covered, since)),
        cid=company_id,
    )


def make_stale(database_url: str, company_id: int, stream: str, project_id: int) -> None:
    """Pretends a unit was last read long ago."""
    execute(
        database_url,
        "UPDATE stream_states SET cursor = :t, last_success_at = :t WHERE company_id = :cid "
        "AND stream = :s AND project_id = :p",
        t=LONG_AGO,
        cid=company_id,
        s=stream,
        p=project_id,
    )


def scheduled_run(hooked: HookedService, company_id: int) -> dict[str, Any]:
    """Makes the installation due and waits for the run the scheduler queues."""
    before = {r["run_id"] for r in hooked.runs(company_id)}
    execute(
        hooked.settings.database_url,
        "UPDATE installations SET next_run_at = :t WHERE company_id = :cid",
        t=LONG_AGO,
        cid=company_id,
    )
    found: list[dict[str, Any]] = []

    def queued() -> bool:
        found[:] = [
            r
            for r in hooked.runs(company_id)
            if r["run_id"] not in before and r["trigger"] == "schedule"
        ]
        return bool(found)

    wait_for(queued, message="a scheduled run")
    return hooked.wait_for_run(found[0]["run_id"])


def set_limit(hooked: HookedService, company_id: int, limit: int) -> None:
    """Stores a learned hourly limit for a company."""
    execute(
        hooked.settings.database_url,
        "INSERT INTO request_budgets (company_id, hourly_limit, source, learned_at) "
        "VALUES (:cid, :limit, 'X-Rate-Limit-Limit', :now)",
        cid=company_id,
        limit=limit,
        now=datetime.now(UTC).replace(tzinfo=None),
    )


@pytest.fixture
def company(hooked: HookedService, sim: SimulatorServer) -> int:
    company_id = sim.state.company_ids()[0]
    assert hooked.install(company_id)["status"] == "succeeded"
    hooked.settled(company_id)
    return company_id


class TestBudget:
    def test_a_run_over_budget_reads_the_stalest_units_and_defers_the_rest(
        self, hooked: HookedService, sim: SimulatorServer, company: int, database_url: str
    ) -> None:
        projects = sim.state.project_ids(company)
        make_stale(database_url, company, "change_events", projects[1])
        fresh = unit_cursor(database_url, company, "rfis", projects[0])
        used = hooked.freshness(company)["budget"]["used_last_hour"]
        # Room for the project list and the one stalest unit (its listing and delete feed).
        set_limit(hooked, company, math.ceil((used + 2) / 0.8))
        assert hooked.freshness(company)["budget"]["remaining"] == 2
        queued = hooked.admin.post(f"/admin/v1/installations/{company}/syncs")
        run = hooked.wait_for_run(queued.json()["run_id"])
        assert run["status"] == "succeeded", run["error"]
        change_events = run["streams"]["change_events"]
        assert change_events["units_done"] == 1 and change_events["units_deferred"] == 2
        assert "request budget spent" in change_events["note"]
        assert run["streams"]["rfis"]["units_deferred"] == 3
        assert unit_cursor(database_url, company, "change_events", projects[1]) != LONG_AGO
        assert unit_cursor(database_url, company, "rfis", projects[0]) == fresh
        view = hooked.freshness(company)
        assert view["last_deferred_units"] == 6  # 7 units: users, rfis and change_events x 3
        assert view["last_deferred_reason"] == "request budget spent"
        # The hour passes (its counts go): a continuation reads what was left, nothing more.
        execute(database_url, "DELETE FROM request_usage WHERE company_id = :cid", cid=company)
        wait_for(
            lambda: any(
                r["trigger"] == "continue" and r["status"] == "succeeded"
                for r in hooked.runs(company)
            ),
            message="the continuation",
        )
        (continuation,) = [r for r in hooked.runs(company) if r["trigger"] == "continue"]
        done = sum(s["units_done"] for n, s in continuation["streams"].items() if n != "projects")
        assert done == view["last_deferred_units"]
        assert unit_cursor(database_url, company, "rfis", projects[0]) != fresh

    def test_webhook_events_wait_while_the_budget_is_spent(
        self,
        hooked: HookedService,
        sim: SimulatorServer,
        company: int,
        database_url: str,
        destination_url: str,
    ) -> None:
        used = hooked.freshness(company)["budget"]["used_last_hour"]
        set_limit(hooked, company, math.ceil(used / 0.8))
        assert hooked.freshness(company)["budget"]["remaining"] == 0
        project_id = sim.state.project_ids(company)[0]
        rfi = sim.state.records("rfis", company, project_id)[0]
        sim.state.update_record("rfis", rfi["id"], {"subject": "after the budget"})
        wait_for(
            lambda: hooked.freshness(company)["webhooks"]["open_events"] == 1, message="stored"
        )
        assert not [r for r in hooked.runs(company) if r["trigger"] == "webhook"]
        execute(database_url, "DELETE FROM request_usage WHERE company_id = :cid", cid=company)
        wait_for(
            lambda: (
                json.loads(rows(destination_url, "rfis", company)[rfi["id"]]["data"])["subject"]
                == "after the budget"
            ),
            message="the change once the budget allows",
        )


class TestLearnedLimit:
    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        # The hourly window is the nearer one from the start: its limit shows in the headers.
        return SimulatorConfig.lenient(
            companies=1, projects=2, records=5, seed=5, hourly_limit=500, spike_limit=100_000
        )

    def test_the_hourly_limit_is_learned_from_x_rate_limit_limit(
        self, hooked: HookedService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert hooked.install(company_id)["status"] == "succeeded"
        budget = hooked.freshness(company_id)["budget"]
        assert budget["hourly_limit"] == 500 and budget["limit_source"] == "X-Rate-Limit-Limit"
        assert budget["planned"] == 400
        assert 0 < budget["used_last_hour"] <= 400
        assert budget["remaining"] == 400 - budget["used_last_hour"]


class TestReconciliation:
    def test_a_scheduled_run_reads_only_covered_units_that_are_due(
        self, hooked: HookedService, sim: SimulatorServer, company: int, database_url: str
    ) -> None:
        quiet = scheduled_run(hooked, company)
        assert quiet["status"] == "succeeded", quiet["error"]
        assert quiet["requests"] == 1  # the project list; every unit is covered and fresh
        assert all(s["units_total"] == 0 for n, s in quiet["streams"].items() if n != "projects")
        project_id = sim.state.project_ids(company)[2]
        make_stale(database_url, company, "rfis", project_id)
        one = scheduled_run(hooked, company)
        assert one["streams"]["rfis"]["units_total"] == 1
        assert sum(s["units_total"] for n, s in one["streams"].items() if n != "projects") == 1

    def test_reconciliation_repairs_a_change_no_event_announced(
        self,
        hooked: HookedService,
        sim: SimulatorServer,
        company: int,
        database_url: str,
        destination_url: str,
    ) -> None:
        project_id = sim.state.project_ids(company)[1]
        rfi = sim.state.records("rfis", company, project_id)[3]
        hub = sim.state.webhooks
        for trigger in [t for t in hub.triggers.values() if t.resource_name == "RFIs"]:
            del hub.triggers[trigger.id]  # Procore lost our triggers: no event will come
        sim.state.update_record("rfis", rfi["id"], {"subject": "missed by events"})
        make_stale(database_url, company, "rfis", project_id)
        run = scheduled_run(hooked, company)
        assert run["streams"]["rfis"]["units_total"] == 1
        assert (
            json.loads(rows(destination_url, "rfis", company)[rfi["id"]]["data"])["subject"]
            == "missed by events"
        )

    def test_each_hour_reads_an_even_share_of_due_units(
        self, hooked: HookedService, sim: SimulatorServer, company: int, database_url: str
    ) -> None:
        # 1 users unit + 3 projects x (rfis, change_events) = 7 covered units; a day's interval
        # allows ceil(7 / 24 * 1.25) = 1 an hour, stalest first. (Covered for years: the units
        # are due by the interval, not a gap events could not fill.)
        covered_since(database_url, company, LONG_AGO - timedelta(days=3650))
        projects = sim.state.project_ids(company)
        for project_id in projects:
            make_stale(database_url, company, "rfis", project_id)
        execute(
            database_url,
            "UPDATE stream_states SET cursor = :t WHERE company_id = :cid AND stream = 'rfis' "
            "AND project_id = :p",
            t=LONG_AGO - timedelta(days=1),
            cid=company,
            p=projects[2],
        )
        run = scheduled_run(hooked, company)
        assert run["streams"]["rfis"]["units_total"] == 1
        assert unit_cursor(database_url, company, "rfis", projects[2]) > LONG_AGO
        assert unit_cursor(database_url, company, "rfis", projects[0]) == LONG_AGO
        assert hooked.freshness(company)["budget"]["reconciled_units_last_hour"] == 1
        again = scheduled_run(hooked, company)
        assert "rfis" not in again["streams"]  # this hour's share is spent: nothing planned
