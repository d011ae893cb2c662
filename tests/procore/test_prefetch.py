"""Prefetch in paginate: the next page is fetched while the caller works on the current one,
without changing what the caller sees (pages, records, order), where a failure surfaces, or
what a caller that stops early leaves behind."""

from __future__ import annotations

import asyncio
import contextlib
import math

import httpx
import pytest

from app.procore import Page, ProcoreForbiddenError, RequestStats, make_http_client
from tests.procore.simulated import CREDS, api_log, first_project, make_client, make_sim, rfis_path


class GateTransport(httpx.AsyncBaseTransport):
    """Real loopback HTTP; a request for page `gated` waits at the gate until it is opened.

    `reached` is set when that request arrived here, i.e. was sent by the client.
    """

    def __init__(self, gated: int) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.gated = str(gated)
        self.reached = asyncio.Event()
        self.opened = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("page") == self.gated:
            self.reached.set()
            await self.opened.wait()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class TestPrefetch:
    async def test_the_next_page_is_requested_while_the_caller_holds_the_current_one(
        self,
    ) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            gate = GateTransport(gated=3)
            client = make_client(sim, per_page=7, http=make_http_client(transport=gate))
            stats = RequestStats()
            pages: list[Page] = []
            listing = client.paginate(
                CREDS, rfis_path(project_id), company_id=company_id, stats=stats
            )
            async with contextlib.aclosing(listing):
                pages.append(await anext(listing))
                pages.append(await anext(listing))  # read ahead from the third page on
                # The caller has not asked for page 3, and the client already sent its request.
                await asyncio.wait_for(gate.reached.wait(), timeout=30)
                gate.opened.set()
                pages.extend([page async for page in listing])
            truth = sim.state.records("rfis", company_id, project_id)
            # The same pages, in the same order, with the same records as one at a time.
            assert [r for p in pages for r in p.records] == truth
            assert [p.page for p in pages] == list(range(1, len(pages) + 1))
            assert [p.next_page for p in pages] == [*range(2, len(pages) + 1), None]
            assert stats.requests == math.ceil(len(truth) / 7) == len(pages)

    async def test_a_failure_of_the_prefetched_page_surfaces_on_that_page(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            gate = GateTransport(gated=3)
            client = make_client(sim, per_page=7, http=make_http_client(transport=gate))
            listing = client.paginate(CREDS, rfis_path(project_id), company_id=company_id)
            async with contextlib.aclosing(listing):
                await anext(listing)
                second = await anext(listing)
                await asyncio.wait_for(gate.reached.wait(), timeout=30)
                # Page 3 fails (the project is withdrawn while its request is on the way) ...
                sim.state.set_project_permitted(company_id, project_id, False)
                gate.opened.set()
                await asyncio.sleep(0)  # ... and the caller still works on page 2 unharmed:
                assert second.page == 2 and len(second.records) == 7
                assert second.next_page == 3
                with pytest.raises(ProcoreForbiddenError):
                    await anext(listing)  # the error comes when page 3 is asked for
            statuses = [e["status"] for e in api_log(sim) if e["path"] == rfis_path(project_id)]
            assert statuses == [200, 200, 403]

    async def test_a_caller_that_stops_early_cancels_the_prefetch(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            gate = GateTransport(gated=3)
            client = make_client(sim, per_page=7, http=make_http_client(transport=gate))
            stats = RequestStats()
            listing = client.paginate(
                CREDS, rfis_path(project_id), company_id=company_id, stats=stats
            )
            async with contextlib.aclosing(listing):
                await anext(listing)
                await anext(listing)
                await asyncio.wait_for(gate.reached.wait(), timeout=30)
            # Closing the listing cancelled the request held at the gate: it never reaches the
            # server and is not counted, and nothing is left running.
            gate.opened.set()
            await asyncio.sleep(0.1)
            pages = [e["query"].get("page") for e in api_log(sim) if e["path"].endswith("/rfis")]
            assert pages == ["1", "2"]
            assert stats.requests == 2
            leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert leftover == []

    async def test_a_single_page_listing_prefetches_nothing(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim, per_page=1000)
            stats = RequestStats()
            pages = [
                p
                async for p in client.paginate(
                    CREDS, rfis_path(project_id), company_id=company_id, stats=stats
                )
            ]
            assert len(pages) == 1 and pages[0].next_page is None
            assert stats.requests == 1

    async def test_the_first_two_pages_are_not_read_ahead(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim, per_page=7)
            listing = client.paginate(CREDS, rfis_path(project_id), company_id=company_id)
            async with contextlib.aclosing(listing):
                first = await anext(listing)
                await asyncio.sleep(0.2)  # time enough for a read-ahead to be answered
                assert first.next_page == 2
                pages = [
                    e["query"].get("page") for e in api_log(sim) if e["path"].endswith("/rfis")
                ]
                assert pages == ["1"]
