"""Paging against the simulator: Link next, Total/Per-Page without Link, resume, companies."""

from __future__ import annotations

import math

from app.procore import Page, RequestStats, make_http_client
from tests.procore.simulated import (
    CREDS,
    LinklessTransport,
    api_log,
    first_project,
    make_client,
    make_sim,
    rfis_path,
)


class TestPaginate:
    async def test_follows_link_next_with_the_minimum_of_requests(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim, per_page=7)
            stats = RequestStats()
            pages: list[Page] = []
            async for page in client.paginate(
                CREDS, rfis_path(project_id), company_id=company_id, stats=stats
            ):
                pages.append(page)
            truth = sim.state.records("rfis", company_id, project_id)
            assert [r for p in pages for r in p.records] == truth
            assert stats.requests == math.ceil(len(truth) / 7) == len(pages)
            assert [p.page for p in pages] == list(range(1, len(pages) + 1))
            assert pages[0].next_page == 2 and pages[-1].next_page is None
            assert pages[0].total == len(truth)
            assert {e["company_header"] for e in api_log(sim)} == {str(company_id)}

    async def test_resumes_from_a_checkpointed_page(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim, per_page=10)
            pages = [
                p
                async for p in client.paginate(
                    CREDS, rfis_path(project_id), company_id=company_id, start_page=3
                )
            ]
            truth = sim.state.records("rfis", company_id, project_id)
            assert [r for p in pages for r in p.records] == truth[20:]
            assert pages[0].page == 3

    async def test_without_link_uses_total_and_per_page(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            http = make_http_client(transport=LinklessTransport())
            client = make_client(sim, per_page=10, http=http)
            stats = RequestStats()
            records = [
                r
                async for p in client.paginate(
                    CREDS, rfis_path(project_id), company_id=company_id, stats=stats
                )
                for r in p.records
            ]
            assert records == sim.state.records("rfis", company_id, project_id)
            assert stats.requests == 5  # 50 records, 10 a page, no probing past the end

    async def test_filters_are_sent(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim)
            truth = sim.state.records("rfis", company_id, project_id)
            stamps = sorted(r["updated_at"] for r in truth)
            window = f"{stamps[10]}...{stamps[20]}"
            records = [
                r
                async for p in client.paginate(
                    CREDS,
                    rfis_path(project_id),
                    company_id=company_id,
                    params={"filters[updated_at]": window},
                )
                for r in p.records
            ]
            expected = [r for r in truth if stamps[10] <= r["updated_at"] <= stamps[20]]
            assert records == expected

    async def test_company_scoped_listing(self) -> None:
        with make_sim() as sim:
            company_id = sim.state.company_ids()[0]
            client = make_client(sim, per_page=100)
            records = [
                r
                async for p in client.paginate(
                    CREDS,
                    "/rest/v1.1/projects",
                    company_id=company_id,
                    params={"company_id": company_id, "filters[by_status]": "All"},
                )
                for r in p.records
            ]
            assert {r["id"] for r in records} == set(sim.state.project_ids(company_id))


class TestListCompanies:
    async def test_lists_every_company_without_the_company_header(self) -> None:
        with make_sim(companies=3) as sim:
            client = make_client(sim, per_page=2)
            companies = await client.list_companies(CREDS)
            assert sorted(c["id"] for c in companies) == sorted(sim.state.company_ids())
            assert [e["company_header"] for e in api_log(sim)] == [None, None]
            assert client.health.snapshot(None)["missing_company_header"] == 0


class TestGet:
    async def test_get_returns_the_decoded_answer(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim)
            answer = await client.get(
                CREDS, rfis_path(project_id), company_id=company_id, params={"per_page": 5}
            )
            assert answer == sim.state.records("rfis", company_id, project_id)[:5]
