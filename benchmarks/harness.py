"""What the throughput, memory and fleet benchmarks share: a simulator set up for speed, the
bare-httpx reference listing, a service runtime on a fresh database, and one run end to end.

Not a benchmark itself; `python -m benchmarks.throughput` (and the others) import it.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from app.core.database import unit_of_work
from app.core.migrations import upgrade_to_head
from app.core.settings import Settings
from app.credentials.crypto import generate_key
from app.installations import service
from app.runs import leases, queue
from app.runtime import Runtime, build_runtime
from app.scheduling.worker import Worker

DEFAULT_POSTGRES = os.environ.get(
    "CONNECTOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
NO_LIMITS = {"hourly": 10_000_000, "spike": 10_000_000, "spike_window_seconds": 10}


def prepare_simulator(url: str, *, latency_ms: float) -> None:
    """Lifts the rate limits (we measure speed, not pacing) and adds latency per request."""
    httpx.put(f"{url}/_sim/limits", json=NO_LIMITS).raise_for_status()
    httpx.put(f"{url}/_sim/faults", json={"latency_ms": latency_ms}).raise_for_status()


def first_company(url: str) -> dict[str, Any]:
    """The simulator's first company: {"id", "project_ids", ...}."""
    body = httpx.get(f"{url}/_sim/companies").json()
    companies = body["companies"] if isinstance(body, dict) else body
    return dict(companies[0])


@dataclass
class Listing:
    """What one bare listing of every project read."""

    records: int
    requests: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds


async def bare_listing(
    url: str, stream_path: str, *, concurrency: int, per_page: int = 1000
) -> Listing:
    """The reference: a plain httpx.AsyncClient lists the projects, then every project's
    records (`concurrency` projects at a time), following Link rel="next" and parsing the JSON.
    Nothing is written anywhere; this is as close to the wire as a Python client gets."""
    company = first_company(url)
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        creds = (await http.get("/_sim/clients")).json()["clients"][0]
        token = (
            await http.post("/oauth/token", data={"grant_type": "client_credentials", **creds})
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Procore-Company-Id": str(company["id"])}
        started = time.perf_counter()
        requests = 1
        projects = (
            await http.get(
                "/rest/v1.1/projects",  # what the connector lists: every project, any status
                params={
                    "company_id": company["id"],
                    "per_page": per_page,
                    "filters[by_status]": "All",
                },
                headers=headers,
            )
        ).json()
        limit = asyncio.Semaphore(concurrency)

        async def one(project_id: int) -> tuple[int, int]:
            records = pages = 0
            next_url: str | None = stream_path.format(project_id=project_id)
            params: dict[str, Any] | None = {"per_page": per_page}
            async with limit:
                while next_url:
                    response = await http.get(next_url, params=params, headers=headers)
                    response.raise_for_status()
                    records += len(response.json())
                    pages += 1
                    link = response.links.get("next")
                    next_url, params = (link["url"], None) if link else (None, None)
            return records, pages

        counts = await asyncio.gather(*(one(int(p["id"])) for p in projects))
        elapsed = time.perf_counter() - started
    return Listing(
        records=sum(c[0] for c in counts),
        requests=requests + sum(c[1] for c in counts),
        seconds=elapsed,
    )


def make_postgres_database(url: str = DEFAULT_POSTGRES, prefix: str = "bench") -> str:
    """Creates an empty database next to `url`'s and returns its URL."""
    base = make_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        base.set(drivername="postgresql").render_as_string(False), autocommit=True
    ) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    """Drops a database made by make_postgres_database (its connections are closed first)."""
    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(False), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')


def bench_settings(
    work: Path, sim_url: str, destination_url: str, *, streams: str, **overrides: Any
) -> Settings:
    """Settings of a service process pointed at the simulator, its own database in `work`."""
    values: dict[str, Any] = {
        "mode": "test",
        "database_url": f"sqlite:///{work / 'connector.db'}",
        "procore_api_url": sim_url,
        "procore_login_url": sim_url,
        "client_id": "sim-client-id",
        "client_secret": "sim-client-secret",
        "encryption_keys": generate_key("bench"),
        "destination_url": destination_url,
        "destination_root": work,
        "destination_allowed_networks": ["127.0.0.0/8"],  # the PostgreSQL destination
        "streams": streams,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def runtime_with_installation(settings: Settings, company_id: int) -> Runtime:
    """Migrates the service database and installs one company (no scheduled run left queued)."""
    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    rt = build_runtime(settings)
    async with unit_of_work(rt.sessions) as session:
        await service.install(session, rt, company_id=company_id, company_name="bench")
        await queue.cancel_for_company(session, company_id, reason="benchmark drives runs itself")
    return rt


async def one_run(rt: Runtime, company_id: int, *, full: bool) -> tuple[float, dict[str, Any]]:
    """Queues, claims and executes one run in this process; returns its seconds (queued to
    recorded as succeeded) and its figures."""
    started = time.perf_counter()
    async with unit_of_work(rt.sessions) as session:
        run, _ = await queue.enqueue(session, company_id, trigger="benchmark", full_refresh=full)
    async with unit_of_work(rt.sessions) as session:
        claimed = await leases.claim(session, rt.worker_id, 600, run_id=run.id)
    assert claimed is not None
    active = Worker(rt, concurrency=1).start(claimed.run)
    assert active.task is not None
    status = await active.task
    elapsed = time.perf_counter() - started
    async with rt.sessions() as session:
        done = await queue.get(session, run.id)
    assert done is not None
    assert status == "succeeded", (status, done.status, done.error)
    return elapsed, done.stats
