"""The console's pages and actions over HTTP: the same services, roles and audit as the API,
and an installations list that stays paged and searchable at many installations."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, insert

from app.installations.models import Installation
from procore_sim.server import SimulatorServer
from tests.console.helpers import (
    OPERATOR_TOKEN,
    ROLE_TOKENS,
    VIEWER_TOKEN,
    console_client,
    post_form,
)
from tests.factories import ADMIN_TOKEN, RunningService, sync_url, wait_until


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"admin_tokens": ROLE_TOKENS}


def audit(service: RunningService, **params: Any) -> list[dict[str, Any]]:
    return list(service.admin.get("/admin/v1/audit", params=params).json())


def add_installations(database_url: str, count: int, start: int = 1000) -> None:
    """Many installations at once, straight into the table (no runs): list pages only."""
    now = datetime.now(UTC)
    rows = [
        {
            "company_id": start + i,
            "company_name": f"Builder {i:04d}" if i % 10 else f"Acme Concrete {i:04d}",
            "environment": "production",
            "status": "active" if i % 7 else "uninstalled",
            "source": "discovery",
            "schedule": "every 1h",
            "streams": "all",
            "paused": i % 5 == 0,
            "missing_projects": [],
            "health": {"429": 2} if i % 9 == 0 else {},
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        for i in range(count)
    ]
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as conn:
            conn.execute(insert(Installation.__table__), rows)
    finally:
        engine.dispose()


def companies_on(page: str) -> list[int]:
    return [int(c) for c in re.findall(r'<tr data-company="(\d+)"', page)]


class TestInstallationsList:
    def test_pages_filters_and_search_at_many_installations(
        self, service: RunningService, database_url: str
    ) -> None:
        add_installations(database_url, 260)
        with console_client(service.url, VIEWER_TOKEN) as browser:
            first = browser.get("/console/installations")
            assert first.status_code == 200
            shown = companies_on(first.text)
            assert shown == list(range(1000, 1050))
            seen = list(shown)
            next_url = re.search(r'href="([^"]+)" rel="next"', first.text)
            while next_url:
                page = browser.get(next_url.group(1).replace("&amp;", "&"))
                seen += companies_on(page.text)
                next_url = re.search(r'href="([^"]+)" rel="next"', page.text)
            assert seen == list(range(1000, 1260))
            acme = companies_on(browser.get("/console/installations?q=acme+CONCRETE").text)
            assert acme == [1000 + i for i in range(0, 260, 10)]
            by_id = companies_on(browser.get("/console/installations?q=1042").text)
            assert by_id == [1042]
            literal = browser.get("/console/installations?q=%25").text
            assert companies_on(literal) == []  # % is searched for, not a wildcard
            gone = companies_on(
                browser.get("/console/installations?status=uninstalled&limit=200").text
            )
            assert gone == [1000 + i for i in range(0, 260, 7)]
            paused = companies_on(browser.get("/console/installations?paused=yes&limit=200").text)
            assert paused == [1000 + i for i in range(0, 260, 5)]
            never = browser.get("/console/installations?result=none&limit=25").text
            assert len(companies_on(never)) == 25
            tampered = browser.get("/console/installations?status=<script>&limit=9999&after=x")
            assert tampered.status_code == 200 and "<script>" not in tampered.text


class TestActions:
    def test_console_actions_use_the_api_rules_and_leave_the_same_entries(
        self, service: RunningService, sim: SimulatorServer, tmp_path: Any
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        page = f"/console/installations/{company_id}"
        with console_client(service.url, OPERATOR_TOKEN) as operator:
            queued = post_form(operator, page, f"{page}/sync", full_refresh="on")
            assert queued.status_code == 303
            run_id = queued.headers["location"].split("/")[-1].split("?")[0]
            assert service.wait_for_run(run_id)["full_refresh"] is True
            run_page = operator.get(f"/console/runs/{run_id}")
            assert run_page.status_code == 200 and "succeeded" in run_page.text
            live = operator.get(f"/console/runs/{run_id}.json").json()
            assert live["status"] == "succeeded" and live["records"] > 0
            assert post_form(operator, page, f"{page}/pause", paused="on").status_code == 303
            assert service.admin.get(f"/admin/v1/installations/{company_id}").json()["paused"]
            assert post_form(operator, page, f"{page}/pause").status_code == 303
            refused = post_form(operator, page, f"{page}/settings", schedule="every 2h")
            assert refused.status_code == 403 and "operator role may not configure" in refused.text
            refused = post_form(
                operator, f"{page}/confirm/uninstall", f"{page}/uninstall", confirm=str(company_id)
            )
            assert refused.status_code == 403
        with console_client(service.url, ADMIN_TOKEN) as admin:
            saved = post_form(
                admin, page, f"{page}/settings", schedule="every 15m", streams="projects,rfis"
            )
            assert saved.status_code == 303
            bad = post_form(admin, page, f"{page}/settings", schedule="every 3 fortnights")
            assert bad.status_code == 400 and "schedule" in bad.text
            moved = post_form(
                admin,
                f"{page}/confirm/destination",
                f"{page}/destination",
                destination_url=f"sqlite:///{tmp_path / 'moved.db'}",
            )
            assert moved.status_code == 303
            unconfirmed = post_form(admin, f"{page}/confirm/uninstall", f"{page}/uninstall")
            assert unconfirmed.status_code == 400
            gone = post_form(
                admin,
                f"{page}/confirm/uninstall",
                f"{page}/uninstall",
                confirm=str(company_id),
                purge="on",
            )
            assert gone.status_code == 303 and gone.headers["location"].endswith("done=purged")
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert inst["status"] == "uninstalled" and inst["schedule"] == "every 15m"
        assert inst["streams"] == ["projects", "rfis"]
        trail = audit(service, company_id=company_id)
        assert [(e["action"], e["actor"], e["source"]) for e in trail] == [
            ("installation.purge", "token-1", "console"),
            ("installation.uninstall", "token-1", "console"),
            ("installation.update", "token-1", "console"),
            ("installation.update", "token-1", "console"),
            ("installation.resume", "oncall", "console"),
            ("installation.pause", "oncall", "console"),
            ("sync.queue", "oncall", "console"),
        ]
        assert trail[3]["after"] == {"schedule": "every 15m", "streams": "projects,rfis"}
        assert trail[2]["after"]["destination"].endswith("moved.db")

    def test_test_destination_shows_each_check_and_needs_the_configure_role(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        page = f"/console/installations/{company_id}"
        with console_client(service.url, OPERATOR_TOKEN) as operator:
            assert 'id="test-destination"' in operator.get(page).text
            refused = post_form(operator, page, f"{page}/destination/test")
            assert refused.status_code == 403
        with console_client(service.url, ADMIN_TOKEN) as admin:
            tested = post_form(admin, page, f"{page}/destination/test")
            assert tested.status_code == 200, tested.text[:500]
            assert 'id="probe-ok"' in tested.text
            for check in ("reachable", "writable"):
                assert f"<td>{check}</td>" in tested.text
            shown = admin.get(page).text  # the stream figures name what they count
            assert "Written ever" in shown and "Rows" in shown

    def test_cancel_from_the_run_page(self, service: RunningService, sim: SimulatorServer) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        sim.state.set_faults(latency_ms=300)  # a run long enough to cancel
        with console_client(service.url, OPERATOR_TOKEN) as operator:
            page = f"/console/installations/{company_id}"
            run_id = post_form(operator, page, f"{page}/sync").headers["location"]
            run_id = run_id.split("/")[-1].split("?")[0]
            wait_until(
                lambda: operator.get(f"/console/runs/{run_id}.json").json()["status"] == "running",
                message="the run to start",
            )
            cancelled = post_form(
                operator, f"/console/runs/{run_id}", f"/console/runs/{run_id}/cancel"
            )
            assert cancelled.status_code == 303
        sim.state.set_faults()
        assert service.wait_for_run(run_id)["status"] == "cancelled"
        entry = audit(service, action="sync.cancel")[0]
        assert entry["target"] == f"run {run_id}" and entry["actor"] == "oncall"

    def test_health_and_audit_pages(self, service: RunningService, sim: SimulatorServer) -> None:
        company_id = sim.state.company_ids()[0]
        service.install_and_sync(company_id)
        with console_client(service.url, VIEWER_TOKEN) as viewer:
            health = viewer.get("/console/health")
            assert health.status_code == 200
            for check in ("database", "migrations", "encryption key", "scheduler"):
                assert check in health.text
            assert 'id="queue-depth">0<' in health.text
            trail = viewer.get(f"/console/audit?company_id={company_id}&action=sync.queue")
            assert trail.status_code == 200
            headers = health.headers
            assert headers["cache-control"] == "no-store"
            assert "frame-ancestors 'none'" in headers["content-security-policy"]
