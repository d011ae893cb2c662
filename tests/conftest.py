"""Shared fixtures: a real service database (SQLite or PostgreSQL), the simulator, the service."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from app.core.migrations import upgrade_to_head
from app.runtime import Runtime, build_runtime
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import RunningService, make_settings

POSTGRES_URL = os.environ.get("CONNECTOR_TEST_POSTGRES_URL")

# The simulator behaves like production by default (procore_sim.config); the app's suites
# raise only its rate limits, for speed (SimulatorConfig.lenient).


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "postgres_only: needs PostgreSQL; collected only with CONNECTOR_TEST_POSTGRES_URL",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leaves PostgreSQL-only tests out of the SQLite pass (they run in CI's PostgreSQL pass)."""
    if POSTGRES_URL:
        return
    kept = [item for item in items if item.get_closest_marker("postgres_only") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty service database: PostgreSQL when CONNECTOR_TEST_POSTGRES_URL is set."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'connector.db'}"
        return
    base = make_url(POSTGRES_URL)
    name = f"connector_test_{uuid.uuid4().hex[:12]}"
    admin = base.set(drivername="postgresql", database="postgres")
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """A small simulated Procore: 2 companies, 2 projects each, 12 records per stream."""
    return SimulatorConfig.lenient(companies=2, projects=2, records=12, seed=3)


@pytest.fixture
def sim(sim_config: SimulatorConfig) -> Iterator[SimulatorServer]:
    """The Procore simulator on a loopback port."""
    with SimulatorServer(sim_config, host="127.0.0.1", port=0) as server:
        yield server


@pytest.fixture
def destination_url(tmp_path: Path) -> str:
    """A SQLite destination database in the test's folder."""
    return f"sqlite:///{tmp_path / 'destination.db'}"


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    """Extra settings of the `service` fixture; override it in a test module or class."""
    return {}


@pytest.fixture
def service(
    sim: SimulatorServer,
    database_url: str,
    destination_url: str,
    sim_config: SimulatorConfig,
    service_overrides: dict[str, Any],
) -> Iterator[RunningService]:
    """The whole service (API, scheduler, worker) on loopback, pointed at the simulator."""
    settings = make_settings(
        database_url=database_url,
        procore_api_url=sim.url,
        procore_login_url=sim.url,
        client_id=sim_config.client_id,
        client_secret=sim_config.client_secret,
        destination_url=destination_url,
        **service_overrides,
    )
    with RunningService(settings) as running:
        yield running


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[Runtime]:
    """The runtime of one process on a fresh, migrated database (short leases for tests)."""
    await asyncio.to_thread(upgrade_to_head, database_url)
    runtime = build_runtime(make_settings(database_url=database_url, lease_seconds=30))
    try:
        yield runtime
    finally:
        await runtime.aclose()
