"""End-to-end sync benchmark: records per second into SQLite and PostgreSQL, requests used
against the minimum (full run and no-change incremental run), and peak memory.

    python -m benchmarks.sync [--projects 10] [--records 2500] [--postgres URL]

The simulator runs in its own process so it does not share the GIL with the service.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from app.core.database import unit_of_work
from app.core.logging import configure_logging
from app.core.migrations import upgrade_to_head
from app.core.settings import Settings
from app.credentials.crypto import generate_key
from app.installations import service
from app.runs import leases, queue
from app.runtime import Runtime, build_runtime
from app.scheduling.worker import Worker
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorProcess

STREAMS = ["rfis", "submittals", "observations", "punch_items"]
PER_PAGE = 1000


async def one_run(rt: Runtime, company_id: int, *, full: bool) -> tuple[float, dict[str, Any]]:
    """Queues, claims and executes one run in this process; returns its time and figures."""
    async with unit_of_work(rt.sessions) as session:
        run, _ = await queue.enqueue(session, company_id, trigger="benchmark", full_refresh=full)
    async with unit_of_work(rt.sessions) as session:
        claimed = await leases.claim(session, rt.worker_id, 600, run_id=run.id)
    assert claimed is not None
    started = time.perf_counter()
    active = Worker(rt, concurrency=1).start(claimed.run)
    assert active.task is not None
    status = await active.task
    elapsed = time.perf_counter() - started
    async with rt.sessions() as session:
        done = await queue.get(session, run.id)
    assert status == "succeeded", (status, done.status, done.error)
    return elapsed, done.stats


async def bench(destination_url: str, sim_url: str, projects: int, records: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        mode="test",
        database_url=f"sqlite:///{work / 'connector.db'}",
        procore_api_url=sim_url,
        procore_login_url=sim_url,
        client_id="sim-client-id",
        client_secret="sim-client-secret",
        encryption_keys=generate_key("bench"),
        destination_url=destination_url,
        streams=",".join(STREAMS),
        per_page=PER_PAGE,
        project_concurrency=4,
        log_level="WARNING",
    )
    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    rt = build_runtime(settings)
    companies = (await rt.http.get(f"{sim_url}/_sim/companies")).json()
    company_id = int(
        (companies["companies"] if isinstance(companies, dict) else companies)[0]["id"]
    )
    async with unit_of_work(rt.sessions) as session:
        await service.install(session, rt, company_id=company_id, company_name="bench")
        await queue.cancel_for_company(session, company_id, reason="benchmark drives runs itself")
    elapsed, stats = await one_run(rt, company_id, full=True)
    total = int(stats["records"])
    pages = len(STREAMS) * projects * max(1, math.ceil(records / PER_PAGE))
    minimum_full = 1 + pages + projects  # projects listing + pages + the RFI recycle bins
    print(f"  full run: {total:,} records in {elapsed:.1f} s = {total / elapsed:,.0f} records/s")
    print(
        f"  full run requests: {stats['requests']} (minimum {minimum_full}, "
        f"ratio {int(stats['requests']) / minimum_full:.2f})"
    )
    elapsed, stats = await one_run(rt, company_id, full=False)
    minimum_incr = 1 + len(STREAMS) * projects + projects
    print(
        f"  no-change incremental run: {elapsed:.2f} s, {stats['requests']} requests "
        f"(minimum {minimum_incr}, ratio {int(stats['requests']) / minimum_incr:.2f}), "
        f"{stats['records']} records written"
    )
    await rt.aclose()


def make_postgres_database(url: str) -> str:
    base = make_url(url)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        base.set(drivername="postgresql").render_as_string(False), autocommit=True
    ) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--records", type=int, default=2500, help="per stream and project")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CONNECTOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    total = len(STREAMS) * args.projects * args.records
    print(
        f"sync benchmark: {total:,} records ({len(STREAMS)} streams x {args.projects} projects "
        f"x {args.records}), per_page={PER_PAGE}"
    )
    sim_config = SimulatorConfig.lenient(
        companies=1,
        projects=args.projects,
        records=args.records,
    )
    with SimulatorProcess(sim_config) as sim:
        sim_url = sim.url
        tmp = Path(tempfile.mkdtemp(prefix="sync-bench-dest-"))
        print("destination SQLite:")
        asyncio.run(bench(f"sqlite:///{tmp / 'dest.db'}", sim_url, args.projects, args.records))
        try:
            pg = make_postgres_database(args.postgres)
        except psycopg.OperationalError as exc:
            print(f"destination PostgreSQL: unreachable ({exc.__class__.__name__}), skipped")
        else:
            print("destination PostgreSQL:")
            httpx.post(f"{sim_url}/_sim/reset")
            asyncio.run(bench(pg, sim_url, args.projects, args.records))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the service process: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
