"""Every delete signal Procore documents accepts filters[updated_at], like the main listing.

procore-api.md sections 6 and 11: recycle bins (RFIs, submittals, observations, punch items,
checklists), documents' filters[is_in_recycle_bin], timesheets' filters[deleted_at] and the
filters[include_deleted] lists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest

from tests.simulator.conftest import Caller

# stream -> the delete feed of project {pid}
FEEDS = {
    "rfis": "/rest/v1.0/projects/{pid}/rfis/recycle_bin",
    "submittals": "/rest/v1.1/projects/{pid}/submittals/recycle_bin",
    "observations": "/rest/v1.0/projects/{pid}/recycle_bin/observations/items",
    "punch_items": "/rest/v1.1/punch_items/recycle_bin?project_id={pid}",
    "checklists": "/rest/v1.0/projects/{pid}/recycle_bin/checklist/lists",
    "documents": "/rest/v1.0/projects/{pid}/documents?filters[is_in_recycle_bin]=true",
    "timesheets": (
        "/rest/v1.0/projects/{pid}/timesheets?filters[deleted_at]=2000-01-01...2100-01-01"
    ),
    "change_events": "/rest/v1.0/change_events?project_id={pid}&filters[include_deleted]=only",
    "work_order_contracts": (
        "/rest/v1.0/work_order_contracts?project_id={pid}&filters[include_deleted]=only"
    ),
    "purchase_order_contracts": (
        "/rest/v1.0/purchase_order_contracts?project_id={pid}&filters[include_deleted]=only"
    ),
}


def window(around: datetime, minutes: int = 5) -> str:
    start, end = around - timedelta(minutes=minutes), around + timedelta(minutes=minutes)
    return f"{start:%Y-%m-%dT%H:%M:%SZ}...{end:%Y-%m-%dT%H:%M:%SZ}"


class TestDeleteFeeds:
    @pytest.mark.parametrize("stream", sorted(FEEDS))
    def test_feed_filters_by_updated_at(self, caller: Caller, stream: str) -> None:
        state = caller.sim.state
        pid = state.project_ids(caller.company_id)[0]
        victim = state.records(stream, caller.company_id, pid)[1]
        state.delete_record(stream, victim["id"])
        path, _, query = FEEDS[stream].format(pid=pid).partition("?")
        params = dict(parse_qsl(query))
        assert [r["id"] for r in caller.get_all(path, **params)] == [victim["id"]]
        recent = caller.get_all(
            path, **params, **{"filters[updated_at]": window(datetime.now(UTC))}
        )
        assert [r["id"] for r in recent] == [victim["id"]]
        assert recent[0]["deleted_at"] is not None
        old = caller.get_all(path, **params, **{"filters[updated_at]": "2001-01-01...2001-12-31"})
        assert old == []
