"""Requests a sync spends against the minimum: a first full sync of a company of many projects
(goal: ratio 1.00) and a quiet incremental run (requests per project, and where they go).

    python -m benchmarks.requests [--projects 100] [--records 20]

The minimum is computed from the simulator's ground truth: for every listing the connector
must read (each stream of each project, the inactive people lists, each budget view's rows,
every 30-day window of daily logs), the number of pages its records fill, at least one.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections import Counter
from pathlib import Path

from app.core.database import unit_of_work
from app.core.logging import configure_logging
from app.core.migrations import upgrade_to_head
from app.core.settings import Settings
from app.credentials.crypto import generate_key
from app.installations import service
from app.procore.catalog import CATALOG, STREAMS, Cursor, Scope
from app.runs import leases, queue
from app.runtime import Runtime, build_runtime
from app.scheduling.worker import Worker
from app.sync.readers import DATE_WINDOW_DAYS
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer

PER_PAGE = 1000


def pages(count: int, per_page: int = PER_PAGE) -> int:
    """Requests to list `count` records: one page at least."""
    return max(1, math.ceil(count / per_page))


def minimum_full(sim: SimulatorServer, company_id: int, settings: Settings) -> int:
    """The fewest requests that read every record of every stream once."""
    state = sim.state
    projects = state.project_ids(company_id)
    total = pages(len(state.records("projects", company_id)), min(PER_PAGE, 300))
    windows = math.ceil((settings.history_days + 1) / DATE_WINDOW_DAYS)
    for stream in CATALOG:
        if stream.name == "projects":
            continue
        if stream.scope == Scope.company:
            people = state.records(stream.name, company_id)
            active = sum(1 for r in people if r.get("is_active", True))
            total += pages(active) + sum(pages(len(people) - active) for _ in stream.extra_paths)
            continue
        for project_id in projects:
            if stream.parent:
                views = state.records(stream.parent, company_id, project_id)
                for view in views:
                    rows = state.records(
                        stream.name, company_id, project_id, budget_view_id=view["id"]
                    )
                    total += pages(len(rows))
            elif stream.cursor == Cursor.date_window:
                total += windows
            else:
                total += pages(len(state.records(stream.name, company_id, project_id)))
    return total


async def one_run(rt: Runtime, company_id: int, *, full: bool) -> dict[str, object]:
    async with unit_of_work(rt.sessions) as session:
        run, _ = await queue.enqueue(session, company_id, trigger="benchmark", full_refresh=full)
    async with unit_of_work(rt.sessions) as session:
        claimed = await leases.claim(session, rt.worker_id, 600, run_id=run.id)
    assert claimed is not None
    active = Worker(rt, concurrency=1).start(claimed.run)
    assert active.task is not None
    assert await active.task == "succeeded"
    async with rt.sessions() as session:
        done = await queue.get(session, run.id)
    assert done is not None
    return done.stats


def where(sim: SimulatorServer, since: float) -> Counter[str]:
    """Requests logged since `since`, by kind of listing."""
    kinds: Counter[str] = Counter()
    for entry in sim.state.request_log(path_prefix="/rest/"):
        if entry["time"] < since:
            continue
        query = entry["query"]
        if "recycle_bin" in entry["path"] or any(
            key in query
            for key in (
                "filters[include_deleted]",
                "filters[is_in_recycle_bin]",
                "filters[deleted_at]",
            )
        ):
            kinds["delete feeds"] += 1
        elif "start_date" in query:
            kinds["daily log windows"] += 1
        elif entry["path"].endswith("/detail_rows"):
            kinds["budget rows per view"] += 1
        else:
            kinds["listings"] += 1
    return kinds


async def bench(sim: SimulatorServer, projects: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="requests-bench-"))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        mode="test",
        database_url=f"sqlite:///{work / 'connector.db'}",
        procore_api_url=sim.url,
        procore_login_url=sim.url,
        client_id=sim.state.config.client_id,
        client_secret=sim.state.config.client_secret,
        encryption_keys=generate_key("bench"),
        destination_url=f"sqlite:///{work / 'destination.db'}",
        destination_root=str(work),
        per_page=PER_PAGE,
        log_level="WARNING",
    )
    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    rt = build_runtime(settings)
    company_id = sim.state.company_ids()[0]
    async with unit_of_work(rt.sessions) as session:
        await service.install(session, rt, company_id=company_id, company_name="bench")
        await queue.cancel_for_company(session, company_id, reason="benchmark drives runs itself")
    started = time.time()
    stats = await one_run(rt, company_id, full=True)
    minimum = minimum_full(sim, company_id, settings)
    used = int(stats["requests"])  # type: ignore[call-overload]
    print(f"first full sync: {used} requests, minimum {minimum}, ratio {used / minimum:.2f}")
    print(f"  by kind: {dict(where(sim, started))}")
    await asyncio.sleep(1.1)  # the next run's window starts after everything it could see
    started = time.time()
    stats = await one_run(rt, company_id, full=False)
    used = int(stats["requests"])  # type: ignore[call-overload]
    print(
        f"quiet incremental run: {used} requests = {used / projects:.1f} per project "
        f"({int(stats['records'])} records written)"  # type: ignore[call-overload]
    )
    print(f"  by kind: {dict(where(sim, started))}")
    written = {
        name: figures["records_written"]
        for name, figures in stats["streams"].items()  # type: ignore[attr-defined]
        if figures["records_written"]
    }
    print(f"  written (full-refresh streams and the daily-log lookback): {written}")
    await rt.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--records", type=int, default=20, help="per stream and project")
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    config = SimulatorConfig.lenient(companies=1, projects=args.projects, records=args.records)
    print(f"requests benchmark: 1 company, {args.projects} projects, {len(STREAMS)} streams")
    with SimulatorServer(config, host="127.0.0.1", port=0) as sim:
        asyncio.run(bench(sim, args.projects))


if __name__ == "__main__":
    main()
