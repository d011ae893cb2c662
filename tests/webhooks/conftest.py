"""A service that knows its own public URL, so the simulator delivers webhooks to it."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from app.core.server_thread import ServiceThread, free_port
from app.core.settings import Settings
from app.main import create_app
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import (
    RunningService,
    install_event,
    make_settings,
    query_rows,
    signed,
    wait_until,
)


class HookedService(RunningService):
    """The whole service on a port chosen first, with CONNECTOR_PUBLIC_URL pointing at it."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        self.port = port
        self._thread = ServiceThread(create_app(settings), port=port)
        self.url = ""

    def install(self, company_id: int) -> dict[str, Any]:
        """Installs by callback and waits for the first run; the hook exists before it."""
        body, headers = signed(install_event(company_id))
        answer = self.anonymous.post("/callbacks/installations", content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        return self.wait_for_run(self.latest_run_id(company_id))

    def freshness(self, company_id: int) -> dict[str, Any]:
        """The admin API's freshness view."""
        answer = self.admin.get(f"/admin/v1/installations/{company_id}/freshness")
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def runs(self, company_id: int) -> list[dict[str, Any]]:
        """Every run of a company, newest first."""
        found: list[dict[str, Any]] = self.admin.get(
            "/admin/v1/syncs", params={"company_id": company_id, "limit": 500, "view": "full"}
        ).json()
        return found

    def settled(self, company_id: int, timeout: float = 30) -> None:
        """Waits until no event of the company is open and no run is going."""

        def done() -> bool:
            view = self.freshness(company_id)
            runs = self.runs(company_id)
            busy = any(r["status"] in ("queued", "running") for r in runs)
            return view["webhooks"]["open_events"] == 0 and not busy

        wait_until(done, timeout=timeout, message="events applied and runs finished")


def hooked_settings(
    sim: SimulatorServer,
    database_url: str,
    destination_url: str,
    port: int,
    sim_config: SimulatorConfig,
    **overrides: Any,
) -> Settings:
    """Settings of a service on `port` whose public URL is its own loopback address."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "procore_api_url": sim.url,
        "procore_login_url": sim.url,
        "client_id": sim_config.client_id,
        "client_secret": sim_config.client_secret,
        "destination_url": destination_url,
        "public_url": f"http://127.0.0.1:{port}",
        "webhook_coalesce_seconds": 0.3,
        "webhook_check_seconds": 1,
        "streams": "projects,users,rfis,change_events",
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """One company with three projects (and one more company nobody installs)."""
    return SimulatorConfig.lenient(companies=2, projects=3, records=8, seed=5)


@pytest.fixture
def service_port() -> int:
    """The port the hooked service listens on (fixed before it starts)."""
    return free_port()


@pytest.fixture
def hooked(
    sim: SimulatorServer,
    database_url: str,
    destination_url: str,
    sim_config: SimulatorConfig,
    service_overrides: dict[str, Any],
    service_port: int,
) -> Iterator[HookedService]:
    """The service with webhooks on, pointed at the simulator."""
    settings = hooked_settings(
        sim, database_url, destination_url, service_port, sim_config, **service_overrides
    )
    with HookedService(settings, service_port) as running:
        yield running


def rows(url: str, table: str, company_id: int) -> dict[int, dict[str, Any]]:
    """Destination rows of one table and company, keyed by id."""
    path = url.removeprefix("sqlite:///")
    try:
        with sqlite3.connect(path) as db:
            db.row_factory = sqlite3.Row
            found = db.execute(
                f'SELECT * FROM "{table}" WHERE company_id = ?',  # noqa: S608 - fixed names
                (company_id,),
            ).fetchall()
    except sqlite3.OperationalError:
        return {}
    return {row["id"]: dict(row) for row in found}


def landed(
    url: str, table: str, company_id: int, record_id: int, check: Callable[[dict[str, Any]], bool]
) -> bool:
    """Whether a destination row satisfies `check`."""
    row = rows(url, table, company_id).get(record_id)
    return row is not None and check(row)


def events(database_url: str, company_id: int) -> list[tuple[Any, ...]]:
    """The stored events of a company: (dedupe_key, stream, resource_id, event_type, run_id,
    applied_at, outcome)."""
    return query_rows(
        database_url,
        "SELECT dedupe_key, stream, resource_id, event_type, run_id, applied_at, outcome "
        "FROM webhook_events WHERE company_id = :cid ORDER BY id",
        cid=company_id,
    )


def deliver(
    service: RunningService, company_id: int, body: dict[str, Any] | bytes, header: str | None
) -> httpx.Response:
    """POSTs a delivery to the service as Procore would."""
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Authorization"] = header
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return service.anonymous.post(
        f"/webhooks/procore/{company_id}", content=content, headers=headers
    )


def sim_hook(sim: SimulatorServer, company_id: int) -> dict[str, Any] | None:
    """The company-scoped hook of the connector in the simulator, if any."""
    hooks = [h for h in sim.state.webhooks.hooks.values() if h.company_id == company_id]
    assert len(hooks) <= 1, hooks
    return hooks[0].to_json() if hooks else None


def wait_for(predicate: Callable[[], bool], timeout: float = 20, message: str = "it") -> float:
    """Waits for a state; returns how long it took."""
    started = time.monotonic()
    wait_until(predicate, timeout=timeout, message=message)
    return time.monotonic() - started
