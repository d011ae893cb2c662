"""Helpers to run the client against the Procore simulator over real loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx

from app.procore import HealthCounters, ProcoreClient, ProcoreCredentials, make_http_client
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer

CLIENT_ID = "test-client"
CLIENT_SECRET = "s3cr3t-that-must-never-leak"
CREDS = ProcoreCredentials(CLIENT_ID, CLIENT_SECRET)
BASE_CONFIG = SimulatorConfig.lenient(
    companies=2,
    projects=3,
    records=50,
    seed=1,
    client_id=CLIENT_ID,
    client_secret=CLIENT_SECRET,
)


@contextmanager
def make_sim(**overrides: Any) -> Iterator[SimulatorServer]:
    """Runs a fresh simulator (the test credentials, small data) on a free loopback port."""
    with SimulatorServer(replace(BASE_CONFIG, **overrides)) as server:
        yield server


def make_client(
    sim: SimulatorServer,
    *,
    http: httpx.AsyncClient | None = None,
    **options: Any,
) -> ProcoreClient:
    """Builds a ProcoreClient against the simulator, with fast retries unless told otherwise."""
    settings: dict[str, Any] = {
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.1,
        "health": HealthCounters(),
    }
    settings.update(options)
    return ProcoreClient(
        http if http is not None else make_http_client(),
        api_url=sim.url,
        login_url=sim.url,
        **settings,
    )


def first_project(sim: SimulatorServer) -> tuple[int, int]:
    """Returns (company_id, project_id) of the first company's first project."""
    company_id = sim.state.company_ids()[0]
    return company_id, sim.state.project_ids(company_id)[0]


def rfis_path(project_id: int) -> str:
    """Returns the RFI list path of a project."""
    return f"/rest/v1.0/projects/{project_id}/rfis"


def api_log(sim: SimulatorServer, **filters: Any) -> list[dict[str, Any]]:
    """Returns the simulator's log of /rest/ requests (once the last answer was logged)."""
    time.sleep(0.05)  # the sim logs a request just after it has sent the answer
    return sim.state.request_log(path_prefix="/rest/", **filters)


def clear_log(sim: SimulatorServer) -> None:
    """Clears the simulator's request log once the last answer was logged."""
    time.sleep(0.05)
    sim.state.clear_request_log()


def token_log(sim: SimulatorServer) -> list[dict[str, Any]]:
    """Returns the simulator's log of token requests (once the last answer was logged)."""
    time.sleep(0.05)
    return sim.state.request_log(path_prefix="/oauth/token")


class LinklessTransport(httpx.AsyncBaseTransport):
    """Real loopback HTTP, but answers lose their Link header (for Total/Per-Page paging)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Sends the request and strips the Link header from the answer."""
        response = await self._inner.handle_async_request(request)
        if "link" in response.headers:
            del response.headers["link"]
        return response

    async def aclose(self) -> None:
        """Closes the wrapped transport."""
        await self._inner.aclose()


class RecordingTransport(httpx.AsyncBaseTransport):
    """Real loopback HTTP that remembers every request it sent (to inspect headers)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Records and sends the request."""
        self.requests.append(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Closes the wrapped transport."""
        await self._inner.aclose()

    def bearer_tokens(self) -> set[str]:
        """Returns every bearer token that was sent."""
        return {
            r.headers["authorization"].removeprefix("Bearer ")
            for r in self.requests
            if "authorization" in r.headers
        }
