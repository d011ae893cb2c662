"""filters[updated_at] in every form, deletes (flags, recycle bins, include_deleted), sort."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from procore_sim import SimulatorConfig
from tests.simulator.conftest import Caller


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(companies=1, projects=2, records=120)


def when(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["updated_at"].replace("Z", "+00:00"))


def between(records: list[dict[str, Any]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    return [r for r in records if start <= when(r) <= end]


class TestUpdatedAtFilter:
    @pytest.fixture
    def rfis(self, caller: Caller) -> tuple[str, list[dict[str, Any]]]:
        pid = caller.sim.state.project_ids(caller.company_id)[0]
        return (
            f"/rest/v1.0/projects/{pid}/rfis",
            caller.sim.state.records("rfis", caller.company_id, pid),
        )

    def middle_window(self, records: list[dict[str, Any]]) -> tuple[datetime, datetime]:
        stamps = sorted(when(r) for r in records)
        return stamps[len(stamps) // 4], stamps[3 * len(stamps) // 4]

    def test_timestamp_range_with_z(self, caller: Caller, rfis: Any) -> None:
        path, truth = rfis
        start, end = self.middle_window(truth)
        value = f"{start:%Y-%m-%dT%H:%M:%SZ}...{end:%Y-%m-%dT%H:%M:%SZ}"
        served = caller.get_all(path, **{"filters[updated_at]": value})
        expected = between(truth, start, end)
        assert served == expected
        assert 0 < len(served) < len(truth)

    def test_date_range_includes_whole_end_day(self, caller: Caller, rfis: Any) -> None:
        path, truth = rfis
        start, end = self.middle_window(truth)
        value = f"{start:%Y-%m-%d}...{end:%Y-%m-%d}"
        served = caller.get_all(path, **{"filters[updated_at]": value})
        day_start = start.replace(hour=0, minute=0, second=0)
        day_end = end.replace(hour=23, minute=59, second=59)
        assert served == between(truth, day_start, day_end)

    def test_offsets_and_quotes(self, caller: Caller, rfis: Any) -> None:
        path, truth = rfis
        start, end = self.middle_window(truth)
        plus_two = start + timedelta(hours=2)
        value = f'"{plus_two:%Y-%m-%dT%H:%M:%S}+02:00...{end:%Y-%m-%dT%H:%M:%S}+00:00"'
        served = caller.get_all(path, **{"filters[updated_at]": value})
        assert served == between(truth, start, end)

    def test_unencoded_plus_in_offset(self, caller: Caller, rfis: Any) -> None:
        path, truth = rfis
        start, end = self.middle_window(truth)
        raw = f"{start + timedelta(hours=1):%Y-%m-%dT%H:%M:%S}+01:00...{end:%Y-%m-%dT%H:%M:%SZ}"
        response = caller.http.get(
            f"{path}?per_page=1000&filters[updated_at]={raw}", headers=caller.headers()
        )
        assert response.status_code == 200, response.text
        assert response.json() == between(truth, start, end)

    @pytest.mark.parametrize(
        "bad",
        [
            "2024-01-01",
            "yesterday...today",
            "2024-13-01...2024-12-01",
            "...2024-01-01",
            "2024-02-01...2024-01-01",
        ],
    )
    def test_malformed_range_is_422(self, caller: Caller, rfis: Any, bad: str) -> None:
        path, _ = rfis
        response = caller.get(path, **{"filters[updated_at]": bad})
        assert response.status_code == 422
        assert "updated_at" in response.text

    def test_update_moves_record_into_recent_window(self, caller: Caller, rfis: Any) -> None:
        path, truth = rfis
        since = datetime.now(UTC) - timedelta(minutes=1)
        value = f"{since:%Y-%m-%dT%H:%M:%SZ}...{since + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}"
        assert caller.get_all(path, **{"filters[updated_at]": value}) == []
        changed = caller.sim.state.update_record("rfis", truth[5]["id"], {"status": "closed"})
        served = caller.get_all(path, **{"filters[updated_at]": value})
        assert [r["id"] for r in served] == [truth[5]["id"]]
        assert served[0]["status"] == "closed"
        assert served[0]["updated_at"] == changed["updated_at"]

    def test_company_streams_filter_too(self, caller: Caller) -> None:
        cid = caller.company_id
        truth = [v for v in caller.sim.state.records("vendors", cid) if v["is_active"]]
        start, end = self.middle_window(truth)
        value = f"{start:%Y-%m-%dT%H:%M:%SZ}...{end:%Y-%m-%dT%H:%M:%SZ}"
        served = caller.get_all(
            "/rest/v1.0/vendors", company_id=cid, **{"filters[updated_at]": value}
        )
        assert served == between(truth, start, end)


class TestDeletes:
    def test_deleted_rfi_moves_to_recycle_bin(self, caller: Caller) -> None:
        state = caller.sim.state
        pid = state.project_ids(caller.company_id)[0]
        victim = state.records("rfis", caller.company_id, pid)[3]
        state.delete_record("rfis", victim["id"])
        listed = caller.get_all(f"/rest/v1.0/projects/{pid}/rfis")
        assert victim["id"] not in [r["id"] for r in listed]
        binned = caller.get_all(f"/rest/v1.0/projects/{pid}/rfis/recycle_bin")
        assert [r["id"] for r in binned] == [victim["id"]]
        assert binned[0]["deleted"] is True
        assert binned[0]["deleted_at"].endswith("Z")
        truth = state.records("rfis", caller.company_id, pid, include_deleted=True)
        assert binned[0] in truth

    @pytest.mark.parametrize(
        "stream,path",
        [
            ("change_events", "/rest/v1.0/change_events"),
            ("work_order_contracts", "/rest/v1.0/work_order_contracts"),
            ("purchase_order_contracts", "/rest/v1.0/purchase_order_contracts"),
        ],
    )
    def test_include_deleted_only_and_with(self, caller: Caller, stream: str, path: str) -> None:
        state = caller.sim.state
        pid = state.project_ids(caller.company_id)[1]
        truth = state.records(stream, caller.company_id, pid)
        state.delete_record(stream, truth[0]["id"])
        plain = caller.get_all(path, project_id=pid)
        only = caller.get_all(path, project_id=pid, **{"filters[include_deleted]": "only"})
        both = caller.get_all(path, project_id=pid, **{"filters[include_deleted]": "with"})
        assert len(plain) == len(truth) - 1
        assert [r["id"] for r in only] == [truth[0]["id"]]
        assert only[0]["deleted_at"] is not None
        assert [r["id"] for r in both] == [r["id"] for r in truth]

    @pytest.mark.parametrize(
        "stream,live,binned",
        [
            (
                "submittals",
                "/rest/v1.1/projects/{pid}/submittals",
                "/rest/v1.1/projects/{pid}/submittals/recycle_bin",
            ),
            (
                "observations",
                "/rest/v1.0/observations/items?project_id={pid}",
                "/rest/v1.0/projects/{pid}/recycle_bin/observations/items",
            ),
            (
                "punch_items",
                "/rest/v1.1/punch_items?project_id={pid}",
                "/rest/v1.1/punch_items/recycle_bin?project_id={pid}",
            ),
            (
                "checklists",
                "/rest/v1.0/projects/{pid}/checklist/lists",
                "/rest/v1.0/projects/{pid}/recycle_bin/checklist/lists",
            ),
        ],
    )
    def test_recycle_bins(self, caller: Caller, stream: str, live: str, binned: str) -> None:
        state = caller.sim.state
        pid = state.project_ids(caller.company_id)[0]
        victim = state.records(stream, caller.company_id, pid)[7]
        state.delete_record(stream, victim["id"])
        live_ids = [r["id"] for r in caller.get_all(live.format(pid=pid))]
        bin_ids = [r["id"] for r in caller.get_all(binned.format(pid=pid))]
        assert victim["id"] not in live_ids
        assert bin_ids == [victim["id"]]

    def test_documents_recycle_bin_filter(self, caller: Caller) -> None:
        state = caller.sim.state
        pid = state.project_ids(caller.company_id)[0]
        victim = state.records("documents", caller.company_id, pid)[2]
        state.delete_record("documents", victim["id"])
        path = f"/rest/v1.0/projects/{pid}/documents"
        assert victim["id"] not in [r["id"] for r in caller.get_all(path)]
        binned = caller.get_all(path, **{"filters[is_in_recycle_bin]": "true"})
        assert [r["id"] for r in binned] == [victim["id"]]
        assert binned[0]["is_in_recycle_bin"] is True

    def test_timesheets_deleted_at_filter(self, caller: Caller) -> None:
        state = caller.sim.state
        pid = state.project_ids(caller.company_id)[0]
        victim = state.records("timesheets", caller.company_id, pid)[0]
        state.delete_record("timesheets", victim["id"])
        path = f"/rest/v1.0/projects/{pid}/timesheets"
        assert victim["id"] not in [r["id"] for r in caller.get_all(path)]
        today = datetime.now(UTC).date()
        window = f"{today - timedelta(days=1)}...{today + timedelta(days=1)}"
        deleted = caller.get_all(path, **{"filters[deleted_at]": window})
        assert [r["id"] for r in deleted] == [victim["id"]]

    def test_hard_delete_removes_from_list_and_ground_truth(self, caller: Caller) -> None:
        state = caller.sim.state
        cid = caller.company_id
        victim = state.records("vendors", cid)[0]
        state.delete_record("vendors", victim["id"])
        assert victim["id"] not in [
            r["id"] for r in caller.get_all("/rest/v1.0/vendors", company_id=cid)
        ]
        assert victim["id"] not in [
            r["id"] for r in state.records("vendors", cid, include_deleted=True)
        ]


class TestSort:
    def test_sort_descending(self, caller: Caller) -> None:
        pid = caller.sim.state.project_ids(caller.company_id)[0]
        served = caller.get_all("/rest/v1.0/change_events", project_id=pid, sort="-updated_at")
        stamps = [r["updated_at"] for r in served]
        assert stamps == sorted(stamps, reverse=True)

    def test_rfi_sort_attribute_and_direction(self, caller: Caller) -> None:
        pid = caller.sim.state.project_ids(caller.company_id)[0]
        served = caller.get_all(
            f"/rest/v1.0/projects/{pid}/rfis",
            **{"sort[attribute]": "due_date", "sort[direction]": "desc"},
        )
        dates = [r["due_date"] for r in served]
        assert dates == sorted(dates, reverse=True)
