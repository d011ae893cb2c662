"""The run queue against procrastinate on PostgreSQL, on the same workload (ADR 0017).

    pip install -e '.[bench]'      # procrastinate: for this benchmark only
    python -m benchmarks.queue_compare [--jobs 5000] [--workers 4] [--concurrency 4]
                                       [--job-ms 50] [--poll 1.0] [--postgres URL]

Both engines get a fresh PostgreSQL database, `--jobs` jobs queued at once (one per
installation) and `--workers` worker processes running `--concurrency` jobs each. A job is
the same stand-in for both: it waits `--job-ms` (an I/O-bound sync of a small company),
so what differs is only what the queue costs. Our side uses the very functions the worker
uses (`leases.claim`, `queue.finish`, `leases.end_dead_leases` with the process identity);
procrastinate uses its own worker (LISTEN/NOTIFY and polling, heartbeats).

Figures: jobs/s to drain the backlog, the queue's overhead per job (worker-slot time not
spent in the job), queued -> started p50/p95 with a backlog and with idle workers (a trickle
of `--trickle` jobs, one every 100 ms), and recovery: one worker gets SIGKILL with the
backlog half done, and we time until its jobs started elsewhere (procrastinate: a retry loop
every second over `get_stalled_jobs()`, its documented recovery, heartbeats every 10 s and
a worker stalled after 30 s; ours: same host, so instant, and as if on another host, the
lease, 30 s).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import statistics
import threading
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from benchmarks.harness import DEFAULT_POSTGRES, drop_postgres_database, make_postgres_database

LEASE = 30


def sync_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


# --- ours -------------------------------------------------------------------------------


async def ours_worker(url: str, concurrency: int, job_s: float, poll: float) -> None:
    from app.core.database import create_engine, make_sessionmaker, unit_of_work
    from app.runs import leases, queue
    from app.runs.models import RunStatus
    from app.runs.owners import WorkerIdentity

    engine = create_engine(url)
    sessions = make_sessionmaker(engine)
    identity = WorkerIdentity.create()
    owner = str(identity)

    async def liveness() -> None:
        while True:
            async with unit_of_work(sessions) as session:
                await leases.end_dead_leases(session, identity.is_dead)
            await asyncio.sleep(1.0)

    async def slot() -> None:
        while True:
            async with unit_of_work(sessions) as session:
                claimed = await leases.claim(session, owner, LEASE)
            if claimed is None:
                await asyncio.sleep(poll)
                continue
            await asyncio.sleep(job_s)
            async with unit_of_work(sessions) as session:
                await queue.finish(
                    session, claimed.run.id, owner, status=RunStatus.succeeded, error=None,
                    progress=None,
                )  # fmt: skip

    await asyncio.gather(liveness(), *(slot() for _ in range(concurrency)))


def run_ours_worker(url: str, concurrency: int, job_s: float, poll: float) -> None:
    asyncio.run(ours_worker(url, concurrency, job_s, poll))


async def ours_enqueue(url: str, first: int, count: int) -> None:
    from app.core.database import create_engine, make_sessionmaker, unit_of_work
    from app.runs import queue

    engine = create_engine(url)
    try:
        async with unit_of_work(make_sessionmaker(engine)) as session:
            for company_id in range(first, first + count):
                await queue.enqueue(session, company_id, trigger="bench")
    finally:
        await engine.dispose()


def ours_timeline(url: str) -> list[tuple[str, datetime, datetime | None, datetime | None]]:
    with psycopg.connect(sync_url(url)) as conn:
        rows = conn.execute(
            "SELECT id, queued_at, started_at, finished_at FROM sync_runs"
        ).fetchall()
    return [(str(r[0]), r[1], r[2], r[3]) for r in rows]


def ours_running(url: str, pid: int) -> list[str]:
    with psycopg.connect(sync_url(url)) as conn:
        rows = conn.execute(
            "SELECT id FROM sync_runs WHERE status = 'running' AND split_part(lease_owner, '/', 3) "
            "= %s",
            (str(pid),),
        ).fetchall()
    return [str(r[0]) for r in rows]


def ours_restarted(url: str, ids: list[str], pid: int) -> set[str]:
    with psycopg.connect(sync_url(url)) as conn:
        rows = conn.execute(
            "SELECT id FROM sync_runs WHERE id = ANY(%s) AND (status <> 'running' OR "
            "split_part(lease_owner, '/', 3) <> %s)",
            (ids, str(pid)),
        ).fetchall()
    return {str(r[0]) for r in rows}


# --- procrastinate ----------------------------------------------------------------------


def make_app(url: str, job_s: float) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=sync_url(url)))

    @app.task(name="sync_installation")
    async def sync_installation(company_id: int) -> None:
        await asyncio.sleep(job_s)

    return app


async def pro_worker(url: str, concurrency: int, job_s: float, poll: float) -> None:
    app = make_app(url, job_s)
    async with app.open_async():
        await app.run_worker_async(
            concurrency=concurrency, fetch_job_polling_interval=poll, install_signal_handlers=False
        )


def run_pro_worker(url: str, concurrency: int, job_s: float, poll: float) -> None:
    asyncio.run(pro_worker(url, concurrency, job_s, poll))


async def pro_setup(url: str, job_s: float) -> None:
    app = make_app(url, job_s)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def pro_enqueue(url: str, job_s: float, first: int, count: int) -> None:
    app = make_app(url, job_s)
    async with app.open_async():
        task = app.tasks["sync_installation"]
        await task.batch_defer_async(*({"company_id": c} for c in range(first, first + count)))


async def pro_retry_stalled(url: str, job_s: float) -> None:
    """procrastinate's documented recovery: retry the jobs of workers that stopped beating."""
    app = make_app(url, job_s)
    async with app.open_async():
        while True:
            for job in await app.job_manager.get_stalled_jobs():
                await app.job_manager.retry_job(job)
            await asyncio.sleep(1.0)


def run_pro_retry_stalled(url: str, job_s: float) -> None:
    asyncio.run(pro_retry_stalled(url, job_s))


def pro_timeline(url: str) -> list[tuple[str, datetime, datetime | None, datetime | None]]:
    with psycopg.connect(sync_url(url)) as conn:
        rows = conn.execute(
            "SELECT job_id, "
            "min(at) FILTER (WHERE type = 'deferred'), max(at) FILTER (WHERE type = 'started'), "
            "max(at) FILTER (WHERE type = 'succeeded') "
            "FROM procrastinate_events GROUP BY job_id"
        ).fetchall()
    return [(str(r[0]), r[1], r[2], r[3]) for r in rows]


def pro_running(url: str, worker_pid: int) -> list[str]:
    # procrastinate does not know pids: the jobs "doing" of the worker with no heartbeat soon
    with psycopg.connect(sync_url(url)) as conn:
        rows = conn.execute("SELECT id FROM procrastinate_jobs WHERE status = 'doing'").fetchall()
    return [str(r[0]) for r in rows]


def pro_restarted(url: str, ids: list[str], _pid: int) -> set[str]:
    with psycopg.connect(sync_url(url)) as conn:
        rows = conn.execute(
            "SELECT job_id FROM procrastinate_events WHERE job_id = ANY(%s) AND type = 'started' "
            "GROUP BY job_id HAVING count(*) > 1",
            ([int(i) for i in ids],),
        ).fetchall()
    return {str(r[0]) for r in rows}


# --- the measurement --------------------------------------------------------------------


ENGINES: dict[str, dict[str, Any]] = {
    "ours": {
        "worker": run_ours_worker,
        "enqueue": lambda url, job_s, first, count: ours_enqueue(url, first, count),
        "timeline": ours_timeline,
        "running": ours_running,
        "restarted": ours_restarted,
    },
    "procrastinate": {
        "worker": run_pro_worker,
        "enqueue": pro_enqueue,
        "timeline": pro_timeline,
        "running": pro_running,
        "restarted": pro_restarted,
    },
}


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = ENGINES[name]
    url = make_postgres_database(args.postgres, f"q{name[:3]}")
    job_s = args.job_ms / 1000
    try:
        if name == "ours":
            from app.core.migrations import upgrade_to_head

            upgrade_to_head(url)
        else:
            asyncio.run(pro_setup(url, job_s))
        asyncio.run(engine["enqueue"](url, job_s, 1, args.jobs))
        context = multiprocessing.get_context("spawn")
        workers = [
            context.Process(
                target=engine["worker"], args=(url, args.concurrency, job_s, args.poll), daemon=True
            )
            for _ in range(args.workers)
        ]
        started = time.monotonic()
        for worker in workers:
            worker.start()
        recovery: list[float] = []
        killed = False
        retry: threading.Thread | None = None
        while time.monotonic() - started < args.timeout:
            timeline = engine["timeline"](url)
            done = sum(1 for t in timeline if t[3] is not None)
            if not killed and done >= args.jobs // 2:
                victim = workers[0]
                held = engine["running"](url, victim.pid)
                if name == "procrastinate":
                    retry = threading.Thread(
                        target=run_pro_retry_stalled, args=(url, job_s), daemon=True
                    )
                os.kill(victim.pid or 0, signal.SIGKILL)
                victim.join(10)
                killed_at = time.monotonic()
                killed = True
                if retry is not None:
                    retry.start()
                pending = set(held)
                # procrastinate's "doing" list includes other workers' jobs: keep only those
                # that stay stuck past a normal job's length.
                time.sleep(min(1.0, job_s * 10))
                if name == "procrastinate":
                    pending &= set(engine["running"](url, 0))
                while pending and time.monotonic() - killed_at < 300:
                    back = engine["restarted"](url, sorted(pending), victim.pid or 0)
                    for _ in back:
                        recovery.append(time.monotonic() - killed_at)
                    pending -= back
                    time.sleep(0.1)
            if done >= args.jobs:
                break
            time.sleep(0.2)
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(10)
        drained = engine["timeline"](url)
        # idle latency: a trickle into idle workers
        workers = [
            context.Process(
                target=engine["worker"], args=(url, args.concurrency, job_s, args.poll), daemon=True
            )
            for _ in range(args.workers)
        ]
        for worker in workers:
            worker.start()
        # Wait until the workers are up: a warm-up job went through.
        asyncio.run(engine["enqueue"](url, job_s, 9_999_999, 1))
        ready = time.monotonic() + 180
        while time.monotonic() < ready:
            if sum(1 for t in engine["timeline"](url) if t[3] is not None) > len(drained):
                break
            time.sleep(0.2)
        time.sleep(1)
        drained_ids = {t[0] for t in engine["timeline"](url)}
        for i in range(args.trickle):
            asyncio.run(engine["enqueue"](url, job_s, 10_000_000 + i, 1))
            time.sleep(0.1)
        time.sleep(args.poll + 2)
        for worker in workers:
            worker.terminate()
            worker.join(10)
        everything = engine["timeline"](url)
    finally:
        drop_postgres_database(url)
    first_ids = drained_ids
    backlog = [t for t in drained if t[2] is not None and t[3] is not None]
    starts = [utc(t[2]) for t in backlog]  # type: ignore[arg-type]
    ends = [utc(t[3]) for t in backlog]  # type: ignore[arg-type]
    span = (max(ends) - min(starts)).total_seconds()
    slots = args.workers * args.concurrency
    waits = [(utc(t[2]) - utc(t[1])).total_seconds() for t in backlog]  # type: ignore[arg-type]
    trickle = [
        (utc(t[2]) - utc(t[1])).total_seconds()
        for t in everything
        if t[0] not in first_ids and t[2] is not None
    ]
    return {
        "jobs": len(backlog),
        "rate": len(backlog) / span,
        "overhead_ms": (slots * span - len(backlog) * job_s) / len(backlog) * 1000,
        "wait_p50": pct(waits, 0.5),
        "wait_p95": pct(waits, 0.95),
        "idle_p50": pct(trickle, 0.5),
        "idle_p95": pct(trickle, 0.95),
        "recovery": recovery,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--job-ms", type=float, default=50)
    parser.add_argument("--poll", type=float, default=1.0, help="polling when idle (s)")
    parser.add_argument("--trickle", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--engines", default="ours,procrastinate")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    print(
        f"queue comparison: {args.jobs:,} jobs of {args.job_ms:g} ms, {args.workers} workers x "
        f"{args.concurrency}, polling {args.poll:g} s when idle"
    )
    for name in args.engines.split(","):
        f = measure(name, args)
        recovery = f["recovery"]
        print(
            f"{name:14s} {f['rate']:7.1f} jobs/s  overhead {f['overhead_ms']:6.1f} ms/job  "
            f"backlog wait p50 {f['wait_p50']:.1f} s p95 {f['wait_p95']:.1f} s  "
            f"idle wait p50 {f['idle_p50'] * 1000:.0f} ms p95 {f['idle_p95'] * 1000:.0f} ms  "
            + (
                f"kill -9: {len(recovery)} jobs restarted after "
                f"{min(recovery):.1f}..{max(recovery):.1f} s (median "
                f"{statistics.median(recovery):.1f} s)"
                if recovery
                else "kill -9: no job was held"
            )
        )


if __name__ == "__main__":
    main()
