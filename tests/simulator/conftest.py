"""Fixtures: a SimulatorServer on a loopback port, an HTTP client and a logged-in caller."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer

# Rate limits raised so the suites can read fast; every other production behaviour stays on.
SMALL = SimulatorConfig.lenient(companies=2, projects=3, records=50, seed=1)
# Query parameters that open the production defaults up (procore-api.md section 11).
ALL_PROJECTS = {"filters[by_status]": "All"}
EXTENDED = {"view": "extended"}
ALL_STATUSES = {"filters[status]": "all"}


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """The simulator configuration; override in a test module to change it."""
    return SMALL


@pytest.fixture
def sim(sim_config: SimulatorConfig) -> Iterator[SimulatorServer]:
    """A running simulator, fresh for each test."""
    with SimulatorServer(sim_config) as server:
        yield server


@pytest.fixture
def http(sim: SimulatorServer) -> Iterator[httpx.Client]:
    """An httpx client pointed at the simulator."""
    with httpx.Client(base_url=sim.url, timeout=10) as client:
        yield client


class Caller:
    """A logged-in app: fetches a token once and sends it with Procore-Company-Id."""

    def __init__(self, http: httpx.Client, sim: SimulatorServer) -> None:
        self.http = http
        self.sim = sim
        self.token = fetch_token(http)
        self.company_id = sim.state.company_ids()[0]

    def headers(self, company: int | str | None = "default") -> dict[str, str]:
        """Authorization plus the Procore-Company-Id header (company=None leaves it out)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        chosen = self.company_id if company == "default" else company
        if chosen is not None:
            headers["Procore-Company-Id"] = str(chosen)
        return headers

    def get(
        self, path: str, *, company: int | str | None = "default", **params: Any
    ) -> httpx.Response:
        """GET an API path with the caller's headers; params go in the query string."""
        # An empty params mapping would wipe a query string already in the path.
        return self.http.get(path, params=params or None, headers=self.headers(company))

    def get_all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every record of a list, following Link rel="next" to the end."""
        response = self.get(path, **params)
        records: list[dict[str, Any]] = []
        while True:
            assert response.status_code == 200, response.text
            records.extend(response.json())
            following = response.links.get("next")
            if following is None:
                return records
            response = self.http.get(following["url"], headers=self.headers())


def fetch_token(
    http: httpx.Client, client_id: str = "sim-client-id", client_secret: str = "sim-client-secret"
) -> str:
    """A fresh access token by the client-credentials grant."""
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
def caller(http: httpx.Client, sim: SimulatorServer) -> Caller:
    """A logged-in caller for the first company."""
    return Caller(http, sim)


@contextmanager
def running(config: SimulatorConfig) -> Iterator[Caller]:
    """A logged-in caller of a simulator of its own (for tests needing another config)."""
    with SimulatorServer(config) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        yield Caller(http, server)
