"""Install by signed callback, full and incremental syncs, deletes: destination rows vs the fake."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.acceptance.fake_procore import FakeProcore
from tests.acceptance.harness import Destination, Service, as_datetime, event

STREAMS = (
    "projects,users,vendors,rfis,submittals,change_events,budget_views,budget_detail_rows,"
    "cost_codes,daily_manpower_logs"
)
CONTRACT = {"company_id", "id", "project_id", "updated_at", "deleted_at", "synced_at", "data"}


def populate(fake: FakeProcore) -> int:
    company = fake.add_company("Acme Builders Ünïcode")
    cid = company.id
    p1, p2 = company.projects
    fake.add_records("users", cid, None, 105)
    fake.add_records("vendors", cid, None, 3, address={"city": "Montréal", "lines": ["1", "2"]})
    fake.add_records("rfis", cid, p1, 230)  # three pages under the 100 cap
    fake.add_records("rfis", cid, p2, 4)
    fake.add_records("submittals", cid, p1, 3)
    fake.add_records("change_events", cid, p1, 4)
    fake.add_records("change_events", cid, p2, 1)
    views = fake.add_records("budget_views", cid, p1, 1)
    fake.add_detail_rows(views[0]["id"], 120)
    fake.add_records("cost_codes", cid, p1, 2)  # p2 has none: the fake answers []
    fake.add_records("daily_manpower_logs", cid, p1, 5)
    return cid


def check_table(dest: Destination, fake: FakeProcore, stream: str, cid: int) -> None:
    rows = dest.rows(stream, cid)
    if stream == "budget_detail_rows":
        expected = {
            rid: (next(iter(fake.companies[cid].projects)), rec)
            for rows_ in fake.children.values()
            for rid, rec in rows_.items()
        }
    else:
        expected = fake.expected(stream, cid)
    assert set(rows) == set(expected), f"{stream}: {len(rows)} rows, {len(expected)} expected"
    for rid, row in rows.items():
        project_id, record = expected[rid]
        assert row["data"] == record, stream  # the record exactly as the fake sent it
        assert row["company_id"] == cid
        if stream in ("projects", "users", "vendors"):
            assert row["project_id"] is None, stream
        else:
            assert row["project_id"] == project_id, stream
        assert row["deleted_at"] is None
        assert row["synced_at"] is not None
        if "updated_at" in record:
            assert as_datetime(row["updated_at"]).replace(tzinfo=UTC) == datetime.fromisoformat(
                record["updated_at"]
            ), stream


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_install_full_then_incremental_then_deletes(
    backend: str,
    fake: FakeProcore,
    env_for: Callable[..., dict[str, str]],
    start: Callable[[dict[str, str]], Service],
    pg_url: Callable[[], str],
) -> None:
    cid = populate(fake)
    extra: dict[str, str] = {"CONNECTOR_STREAMS": STREAMS}
    if backend == "postgresql":
        extra["CONNECTOR_DATABASE_URL"] = pg_url()
        extra["CONNECTOR_DESTINATION_URL"] = pg_url()
    env = env_for(**extra)
    service = start(env)
    dest = Destination(env["CONNECTOR_DESTINATION_URL"])

    service.wait_installed(cid)
    answer = service.callback(event("created", cid))
    assert answer.status_code == 202, answer.text
    assert answer.json()["company_id"] == cid and answer.json()["status"] == "active"
    run = service.wait_first_run(cid)
    assert run["status"] == "succeeded", run

    # SPEC 6: one table per stream with the contract columns and primary key.
    for stream in STREAMS.split(","):
        assert stream in dest.tables(), stream
        assert set(dest.columns(stream)) >= CONTRACT, stream
        # Budget detail rows repeat their line item's id in every view: keyed by view too.
        key = ["company_id", "id", "parent_id"] if stream == "budget_detail_rows" else None
        assert sorted(dest.primary_key(stream)) == (key or ["company_id", "id"]), stream
        check_table(dest, fake, stream, cid)

    calls = fake.api_calls()
    assert calls, "nothing was called"
    assert fake.missing_header == 0 and fake.wrong_header == 0
    assert all(c.company_header == str(cid) for c in calls if c.path != "/rest/v1.0/companies")
    assert all(int(c.query.get("per_page", "100")) >= 100 for c in calls)
    assert 429 not in fake.statuses() and 401 not in fake.statuses()

    # Incremental: changes land, and incremental streams ask with filters[updated_at].
    p1 = fake.companies[cid].projects[0]
    time.sleep(1.1)
    rfi_id = next(iter(fake.records[("rfis", cid, p1)]))
    fake.update_record("rfis", cid, p1, rfi_id, subject="changed — ✓")
    new_user = fake.add_records("users", cid, None, 1, fresh=True)[0]
    gone_rfi = list(fake.records[("rfis", cid, p1)])[5]
    fake.delete_record("rfis", cid, p1, gone_rfi)
    gone_ce = next(iter(fake.records[("change_events", cid, p1)]))
    fake.delete_record("change_events", cid, p1, gone_ce)
    fake.clear_log()

    second = service.sync_now(cid)
    assert second["status"] == "succeeded", second
    for path_end in ("/rfis", "/submittals", "/users", "/vendors"):
        listed = [c for c in fake.api_calls() if c.path.endswith(path_end)]
        assert listed, path_end
        assert all("filters[updated_at]" in c.query for c in listed), [
            (c.path, c.query) for c in listed
        ]
        for c in listed:
            low, _high = c.query["filters[updated_at]"].strip('"').split("...")
            assert datetime.fromisoformat(low.replace("Z", "+00:00")) < datetime.now(UTC)
    ce_calls = [c for c in fake.api_calls() if c.path.endswith("/change_events")]
    assert any(c.query.get("filters[include_deleted]") in ("only", "with") for c in ce_calls)
    assert any(c.path.endswith("/rfis/recycle_bin") for c in fake.api_calls())

    rfis = dest.rows("rfis", cid)
    assert rfis[rfi_id]["data"]["subject"] == "changed — ✓"
    assert rfis[gone_rfi]["deleted_at"] is not None
    assert dest.rows("change_events", cid)[gone_ce]["deleted_at"] is not None
    assert dest.rows("users", cid)[new_user["id"]]["data"] == new_user
    undeleted = [r for rid, r in rfis.items() if rid != gone_rfi and r["deleted_at"] is not None]
    assert not undeleted
    assert fake.missing_header == 0


def test_install_with_callback_credentials_only(
    fake: FakeProcore,
    env_for: Callable[..., dict[str, str]],
    start: Callable[[dict[str, str]], Service],
) -> None:
    """No app-level credentials: the callback's client_id/secret are used (and never shown)."""
    company = fake.add_company("Callback Creds Co", projects=1)
    fake.clients["per-install-id"] = "per-install-secret-xyz"
    fake.add_records("rfis", company.id, company.projects[0], 3)
    env = env_for(
        CONNECTOR_CLIENT_ID="", CONNECTOR_CLIENT_SECRET="", CONNECTOR_STREAMS="projects,rfis"
    )
    service = start(env)
    answer = service.callback(
        event(
            "created",
            company.id,
            client_id="per-install-id",
            client_secret="per-install-secret-xyz",
        )
    )
    assert answer.status_code == 202, answer.text
    run = service.wait_first_run(company.id)
    assert run["status"] == "succeeded", run
    dest = Destination(env["CONNECTOR_DESTINATION_URL"])
    assert len(dest.rows("rfis", company.id)) == 3
    for path in ("/admin/v1/installations", f"/admin/v1/installations/{company.id}"):
        text = service.admin.get(path).text
        assert "per-install-secret-xyz" not in text
    assert "per-install-secret-xyz" not in service.log()


def data_of(row: dict[str, Any]) -> dict[str, Any]:
    return row["data"]
