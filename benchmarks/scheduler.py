"""Scheduler tick time and memory with 1,000 installations (prints figures; not a test).

    python benchmarks/scheduler.py [--installations 1000] [--database-url URL]

Creates a fresh database (a temporary SQLite file unless --database-url names an empty one),
adds the installations on one schedule, and times: an idle tick (nothing due), the tick
that finds all of them due at once (the worst case: every installation queued), and the
spread of their next run times.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
import tracemalloc
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from app.core.database import unit_of_work, utcnow
from app.core.migrations import upgrade_to_head
from app.core.settings import Settings
from app.credentials.crypto import generate_key
from app.installations.models import Installation
from app.installations.schedules import parse_schedule
from app.runs import queue
from app.runtime import build_runtime
from app.scheduling.scheduler import Scheduler


async def bench(database_url: str, count: int, schedule_text: str) -> None:
    await asyncio.to_thread(upgrade_to_head, database_url)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, mode="test", database_url=database_url, encryption_keys=generate_key("b")
    )
    rt = build_runtime(settings)
    scheduler = Scheduler(rt, worker=None)  # no worker: measure the scheduler alone
    schedule = parse_schedule(schedule_text)
    now = utcnow()
    async with unit_of_work(rt.sessions) as session:
        for company_id in range(1, count + 1):
            session.add(
                Installation(
                    company_id=company_id,
                    schedule=schedule_text,
                    streams="all",
                    next_run_at=schedule.next_run(now, company_id),
                    missing_projects=[],
                    health={},
                )
            )

    tracemalloc.start()
    idle = []
    for _ in range(20):
        started = time.perf_counter()
        await scheduler.tick()
        idle.append(time.perf_counter() - started)

    async with unit_of_work(rt.sessions) as session:
        await session.execute(update(Installation).values(next_run_at=now - timedelta(hours=3)))
    started = time.perf_counter()
    await scheduler.tick()
    burst = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    async with rt.sessions() as session:
        depth = await queue.queue_depth(session)
    await rt.aclose()

    starts = Counter(schedule.next_run(now, company_id) for company_id in range(1, count + 1))
    print(f"installations: {count} on {schedule_text!r} ({database_url.split(':')[0]})")
    print(
        f"idle tick: median {statistics.median(idle) * 1000:.1f} ms, "
        f"max {max(idle) * 1000:.1f} ms (20 ticks)"
    )
    print(f"tick with all {count} due: {burst * 1000:.0f} ms, queued {depth} runs")
    print(f"peak Python allocations during the ticks: {peak / 1024 / 1024:.1f} MiB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process max RSS: {rss:.0f} MiB")
    print(
        f"start times: {len(starts)} distinct seconds, at most {max(starts.values())} "
        f"installations in one second"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installations", type=int, default=1000)
    parser.add_argument("--schedule", default="every 1h")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(bench(url, args.installations, args.schedule))


if __name__ == "__main__":
    main()
