"""The shared httpx client: explicit timeouts and limits, connections kept alive and reused."""

from __future__ import annotations

from app.procore import make_http_client
from tests.procore.simulated import CREDS, first_project, make_client, make_sim, rfis_path


class TestHttpClient:
    async def test_timeouts_are_explicit(self) -> None:
        async with make_http_client(connect_timeout=3, read_timeout=20) as http:
            assert http.timeout.connect == 3
            assert http.timeout.read == 20
            assert http.timeout.write is not None and http.timeout.pool is not None

    async def test_sequential_calls_reuse_one_connection(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            async with make_http_client() as http:
                client = make_client(sim, http=http, per_page=5)
                async for _ in client.paginate(CREDS, rfis_path(project_id), company_id=company_id):
                    pass
                pool = http._transport._pool  # type: ignore[attr-defined]
                assert len(pool.connections) == 1  # token + 10 pages over one socket
