"""Paging: page/per_page, the cap, Total/Per-Page headers and absolute Link URLs."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.simulator.conftest import Caller


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(companies=1, projects=1, records=250, max_per_page=120)


@pytest.fixture
def rfis_path(caller: Caller) -> Iterator[str]:
    pid = caller.sim.state.project_ids(caller.company_id)[0]
    yield f"/rest/v1.0/projects/{pid}/rfis"


def page_of(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["page"][0])


class TestPaging:
    def test_default_page_size_is_100(self, caller: Caller, rfis_path: str) -> None:
        response = caller.get(rfis_path)
        assert len(response.json()) == 100
        assert response.headers["Per-Page"] == "100"
        assert response.headers["Total"] == "250"

    def test_per_page_is_capped(self, caller: Caller, rfis_path: str) -> None:
        response = caller.get(rfis_path, per_page=10_000)
        assert len(response.json()) == 120
        assert response.headers["Per-Page"] == "120"

    def test_links_on_a_middle_page(self, caller: Caller, sim: SimulatorServer,
                                    rfis_path: str) -> None:
        response = caller.get(rfis_path, per_page=50, page=3)
        links = response.links
        assert set(links) == {"first", "prev", "next", "last"}
        assert all(link["url"].startswith(sim.url + rfis_path) for link in links.values())
        assert [page_of(links[r]["url"]) for r in ("first", "prev", "next", "last")] == [
            1, 2, 4, 5]
        assert parse_qs(urlsplit(links["next"]["url"]).query)["per_page"] == ["50"]

    def test_first_page_has_no_prev_and_last_page_no_next(self, caller: Caller,
                                                           rfis_path: str) -> None:
        assert "prev" not in caller.get(rfis_path, per_page=50, page=1).links
        last = caller.get(rfis_path, per_page=50, page=5)
        assert "next" not in last.links
        assert len(last.json()) == 50

    def test_past_the_end_is_an_empty_list(self, caller: Caller, rfis_path: str) -> None:
        response = caller.get(rfis_path, per_page=50, page=9)
        assert response.status_code == 200
        assert response.json() == []
        assert "next" not in response.links

    def test_links_keep_other_query_parameters(self, caller: Caller, rfis_path: str) -> None:
        window = "2000-01-01...2100-01-01"
        response = caller.get(rfis_path, per_page=50, **{"filters[updated_at]": window})
        query = parse_qs(urlsplit(response.links["next"]["url"]).query)
        assert query["filters[updated_at]"] == [window]

    def test_pages_are_disjoint_and_ordered_by_id(self, caller: Caller,
                                                  rfis_path: str) -> None:
        ids: list[int] = []
        for page in range(1, 7):
            ids += [r["id"] for r in caller.get(rfis_path, per_page=50, page=page).json()]
        assert ids == sorted(set(ids))
        assert len(ids) == 250

    def test_order_is_stable_after_updates(self, caller: Caller, rfis_path: str) -> None:
        before = [r["id"] for r in caller.get(rfis_path, per_page=120).json()]
        caller.sim.state.update_record("rfis", before[0], {"subject": "changed"})
        after = [r["id"] for r in caller.get(rfis_path, per_page=120).json()]
        assert before == after

    def test_empty_list_has_total_zero(self, http: httpx.Client, caller: Caller) -> None:
        cid = caller.company_id
        created = caller.sim.state.create_record("projects", cid, None, {"name": "Empty"})
        response = caller.get(f"/rest/v1.0/projects/{created['id']}/rfis")
        assert response.json() == []
        assert response.headers["Total"] == "0"
        assert "next" not in response.links
