"""A fleet on PostgreSQL: thousands of installations, 4 worker processes and an API process.

    python -m benchmarks.fleet [--installations 5000] [--workers 4] [--concurrency 4]
                               [--lease 30] [--kill-at 0.5] [--foreign] [--postgres URL]

Set-up: a simulator process with `--installations` small companies (1 project, 3 RFIs each),
a fresh PostgreSQL service database with every company installed, a PostgreSQL destination;
each installation's next run is made due at the same instant T0 (the worst case: a fleet
that was down, or one schedule slot shared by everyone). Then `connector serve --role api`
and `--workers` x `connector serve --role worker` start as operators run them, and their
scheduler ticks queue the due runs and their workers claim and execute them (streams: rfis).

When `--kill-at` of the runs have finished, one worker gets SIGKILL; the runs it held are
followed until another worker claims them (same host: instant resume; with `--foreign`
their leases are first rewritten to a worker on another host, so they wait for the lease).

Figures, from the database and the workers' JSON logs: runs per minute, due -> started
p50/p95/max (max = the fairness bound: the longest any installation waited), claims per second
sustained, the database's own time per claim (EXPLAIN ANALYZE of the claim's two statements
with the queue full), executions per run (zero double executions), and the resume delay.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import case, select, text, update
from sqlalchemy.dialects import postgresql

from app.core.database import unit_of_work, utcnow
from app.core.logging import configure_logging
from app.installations import service
from app.installations.models import Installation
from app.runs import leases
from app.runs.models import RunStatus, SyncRun
from app.runs.owners import Owner
from app.runs.queue import WEBHOOK_TRIGGER
from benchmarks.harness import (
    DEFAULT_POSTGRES,
    bench_settings,
    drop_postgres_database,
    make_postgres_database,
    one_run,
    prepare_simulator,
    runtime_with_installation,
)
from procore_sim.server import SimulatorProcess


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Fleet:
    """The API process and the worker processes, with their logs."""

    def __init__(self, env: dict[str, str], work: Path, workers: int) -> None:
        self.env, self.work = env, work
        self.api = self._start("api", "api", str(free_port()))
        self.workers = [self._start(f"worker-{i}", "worker", "0") for i in range(workers)]

    def _start(self, name: str, role: str, port: str) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.log").open("wb")
        command = [sys.executable, "-m", "app.cli", "serve", "--role", role, "--port", port,
                   "--no-migrate"]  # fmt: skip
        return subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = (self.work / f"{name}.log").read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def worker_id(self, index: int, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events(f"worker-{index}"):
                if event.get("event") == "service started":
                    return str(event["worker_id"])
            time.sleep(0.2)
        raise RuntimeError(f"worker-{index} did not start: {self.work}")

    def stop(self) -> None:
        for process in [self.api, *self.workers]:
            if process.poll() is None:
                process.terminate()
        for process in [self.api, *self.workers]:
            try:
                process.wait(70)
            except subprocess.TimeoutExpired:
                process.kill()


async def set_up(settings: Any, companies: list[int], due: datetime) -> float:
    """Installs every company, runs one warm-up sync (it creates the destination's tables),
    clears the runs the installs queued and makes every installation due at `due`; returns
    the seconds the installs took."""
    rt = await runtime_with_installation(settings, companies[0])
    try:
        await one_run(rt, companies[0], full=True)  # creates the destination's tables
        started = time.perf_counter()
        for chunk in range(0, len(companies), 250):
            async with unit_of_work(rt.sessions) as session:
                for company_id in companies[chunk : chunk + 250]:
                    await service.install(
                        session, rt, company_id=company_id, company_name=f"c{company_id}"
                    )
        installed = time.perf_counter() - started
        async with unit_of_work(rt.sessions) as session:
            await session.execute(
                update(SyncRun)
                .where(SyncRun.status == RunStatus.queued)
                .values(status=RunStatus.cancelled, finished_at=utcnow(), error="bench set-up")
            )
            await session.execute(text("DELETE FROM sync_runs"))
            await session.execute(update(Installation).values(next_run_at=due))
    finally:
        await rt.aclose()
    return installed


async def explain_claim(database_url: str) -> dict[str, float]:
    """The database's own time for one claim (candidate SELECT + compare-and-set UPDATE),
    from EXPLAIN ANALYZE in a transaction that is rolled back."""
    from app.core.database import create_engine

    engine = create_engine(database_url)
    now = utcnow()
    # The candidate SELECT exactly as `leases.claim` issues it on PostgreSQL.
    candidates = (
        select(SyncRun.id, SyncRun.status)
        .where(leases._claimable(now), SyncRun.cancel_requested.is_(False))
        .order_by(
            SyncRun.attempts >= leases.REPEATED_CRASHES,
            case((SyncRun.trigger == WEBHOOK_TRIGGER, 0), else_=1),
            SyncRun.queued_at,
            SyncRun.id,
        )
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    figures: dict[str, float] = {}
    try:
        async with engine.connect() as conn:
            depth = await conn.scalar(
                select(text("count(*)")).select_from(SyncRun).where(SyncRun.status == "queued")
            )
            figures["queued_when_measured"] = float(depth or 0)
            rows = (await conn.execute(candidates)).all()
            if not rows:
                return figures
            claim = (
                update(SyncRun)
                .where(SyncRun.id == rows[0][0], leases._claimable(now))
                .values(status=RunStatus.running, lease_owner="explain")
            )
            for name, statement in (("select", candidates), ("update", claim)):
                literal = {"literal_binds": True}
                compiled = statement.compile(dialect=dialect, compile_kwargs=literal)
                explain = text(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}")
                plan = (await conn.execute(explain)).scalar()
                top = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
                figures[f"{name}_ms"] = float(top["Planning Time"]) + float(top["Execution Time"])
            await conn.rollback()
    finally:
        await engine.dispose()
    return figures


def read_runs(database_url: str) -> list[dict[str, Any]]:
    sync = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(sync) as conn:
        cursor = conn.execute(
            "SELECT id, company_id, status, attempts, queued_at, started_at, finished_at, "
            "lease_owner FROM sync_runs"
        )
        names = [d.name for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def follow_kill(
    fleet: Fleet, database_url: str, index: int, owner: str, foreign: bool
) -> dict[str, Any]:
    """SIGKILLs one worker and times how long its runs take to be claimed elsewhere."""
    sync = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(sync, autocommit=True) as conn:
        held = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM sync_runs WHERE status = 'running' AND lease_owner = %s", (owner,)
            )
        ]
        fleet.workers[index].send_signal(signal.SIGKILL)
        fleet.workers[index].wait(10)
        killed = time.monotonic()
        watched = owner
        if foreign and held:
            # As if that worker ran on another host: its pid means nothing here.
            watched = str(Owner("elsewhere", "0123456789ab", 4242, "f0f0f0f0f0f0"))
            conn.execute(
                "UPDATE sync_runs SET lease_owner = %s WHERE lease_owner = %s AND status = "
                "'running'",
                (watched, owner),
            )
        # Runs it finished between the query and the kill are not orphans.
        delays: dict[str, float] = {}
        deadline = killed + 600
        while len(delays) < len(held) and time.monotonic() < deadline:
            for run_id, lease_owner, status in conn.execute(
                "SELECT id, lease_owner, status FROM sync_runs WHERE id = ANY(%s)", (held,)
            ):
                if run_id not in delays and (lease_owner != watched or status != "running"):
                    delays[run_id] = time.monotonic() - killed
            time.sleep(0.05)
    return {"held": len(held), "delays": sorted(delays.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--installations", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="runs per worker")
    parser.add_argument("--lease", type=int, default=30)
    parser.add_argument("--kill-at", type=float, default=0.5)
    parser.add_argument("--foreign", action="store_true")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    work = Path(tempfile.mkdtemp(prefix="fleet-"))
    service_db = make_postgres_database(args.postgres, "fleet")
    destination_db = make_postgres_database(args.postgres, "fleetdest")
    fleet: Fleet | None = None
    try:
        with SimulatorProcess(companies=args.installations, projects=1, records=3) as sim:
            prepare_simulator(sim.url, latency_ms=0)
            body = httpx.get(f"{sim.url}/_sim/companies", timeout=120).json()
            companies = [int(c["id"]) for c in body["companies"]]
            settings = bench_settings(
                work, sim.url, destination_db, streams="rfis", database_url=service_db,
                per_page=100, schedule="every 24h",  # no second slot within the benchmark
            )  # fmt: skip
            due = utcnow() + timedelta(seconds=3600)  # set for real once the fleet is up
            installed = asyncio.run(set_up(settings, companies, due))
            print(
                f"fleet: {len(companies):,} installations installed in {installed:.0f} s; "
                f"{args.workers} workers x {args.concurrency} runs + 1 API process; "
                f"lease {args.lease} s; work in {work}",
                flush=True,
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
            env.update(
                CONNECTOR_MODE="test",
                CONNECTOR_DATABASE_URL=service_db,
                CONNECTOR_DESTINATION_URL=destination_db,
                CONNECTOR_DESTINATION_ALLOWED_NETWORKS="127.0.0.0/8",
                CONNECTOR_DESTINATION_ROOT=str(work),
                CONNECTOR_PROCORE_API_URL=sim.url,
                CONNECTOR_PROCORE_LOGIN_URL=sim.url,
                CONNECTOR_CLIENT_ID=settings.client_id or "",
                CONNECTOR_CLIENT_SECRET=settings.client_secret.get_secret_value(),
                CONNECTOR_ENCRYPTION_KEYS=settings.encryption_keys.get_secret_value(),
                CONNECTOR_STREAMS="rfis",
                CONNECTOR_PER_PAGE="100",
                CONNECTOR_WORKER_CONCURRENCY=str(args.concurrency),
                CONNECTOR_LEASE_SECONDS=str(args.lease),
                CONNECTOR_SCHEDULER_TICK_SECONDS="1",
                CONNECTOR_DISCOVERY_INTERVAL_SECONDS="0",
                CONNECTOR_LOG_FORMAT="json",
                CONNECTOR_LOG_LEVEL="INFO",
            )
            fleet = Fleet(env, work, args.workers)
            owners = [fleet.worker_id(i) for i in range(args.workers)]
            t0 = asyncio.run(make_due(service_db))
            total = len(companies)
            explained: dict[str, float] = {}
            kill: dict[str, Any] = {}
            deadline = time.monotonic() + args.timeout
            while time.monotonic() < deadline:
                runs = read_runs(service_db)
                done = sum(r["status"] == "succeeded" for r in runs)
                if not explained and sum(r["status"] == "queued" for r in runs) > total // 2:
                    explained = asyncio.run(explain_claim(service_db))
                if not kill and done >= args.kill_at * total:
                    kill = follow_kill(fleet, service_db, 0, owners[0], args.foreign)
                if done >= total:
                    break
                if all(w.poll() is not None for w in fleet.workers):
                    print("every worker process exited: see their logs", flush=True)
                    break
                time.sleep(0.5)
            runs = read_runs(service_db)
            fleet.stop()
    finally:
        if fleet is not None:
            fleet.stop()
    report(runs, fleet, t0, total, explained, kill, args)
    drop_postgres_database(service_db)
    drop_postgres_database(destination_db)


async def make_due(database_url: str) -> datetime:
    """Makes every installation due now; returns that instant (T0)."""
    from app.core.database import create_engine, make_sessionmaker

    engine = create_engine(database_url)
    try:
        t0 = utcnow()
        async with unit_of_work(make_sessionmaker(engine)) as session:
            await session.execute(update(Installation).values(next_run_at=t0))
    finally:
        await engine.dispose()
    return t0


def report(
    runs: list[dict[str, Any]],
    fleet: Fleet | None,
    t0: datetime,
    total: int,
    explained: dict[str, float],
    kill: dict[str, Any],
    args: argparse.Namespace,
) -> None:
    def utc(value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    succeeded = [r for r in runs if r["status"] == "succeeded"]
    started = [utc(r["started_at"]) for r in runs if r["started_at"]]
    finished = [utc(r["finished_at"]) for r in succeeded]
    waits = [(utc(r["started_at"]) - t0).total_seconds() for r in runs if r["started_at"]]
    queued_waits = [
        (utc(r["started_at"]) - utc(r["queued_at"])).total_seconds()
        for r in runs
        if r["started_at"]
    ]
    span = (max(finished) - min(started)).total_seconds() if finished else float("nan")
    claims = sum(int(r["attempts"]) for r in runs)
    claim_span = (max(started) - min(started)).total_seconds() if started else float("nan")
    print(f"runs: {len(succeeded):,} of {total:,} succeeded ({len(runs):,} runs recorded)")
    print(
        f"runs per minute: {len(succeeded) / span * 60:,.0f} "
        f"(first start to last finish {span:.0f} s)"
    )
    print(
        f"due -> started: p50 {percentile(waits, 0.5):.1f} s, "
        f"p95 {percentile(waits, 0.95):.1f} s, max {max(waits):.1f} s "
        "(fairness: the longest any installation waited)"
    )
    print(
        f"queued -> started: p50 {percentile(queued_waits, 0.5):.1f} s, "
        f"p95 {percentile(queued_waits, 0.95):.1f} s"
    )
    rate = claims / max(claim_span, 1e-9)
    print(f"claims: {claims:,} in {claim_span:.0f} s = {rate:.1f} claims/s")
    if explained:
        print(
            f"database time per claim (EXPLAIN ANALYZE, {explained['queued_when_measured']:.0f} "
            f"queued): candidates SELECT {explained.get('select_ms', float('nan')):.2f} ms + "
            f"compare-and-set UPDATE {explained.get('update_ms', float('nan')):.2f} ms"
        )
    per_company = Counter(r["company_id"] for r in runs)
    if fleet is not None:
        starts: Counter[str] = Counter()
        for index in range(len(fleet.workers)):
            for event in fleet.events(f"worker-{index}"):
                if event.get("event") == "sync started":
                    starts[str(event["run_id"])] += 1
        attempts = {r["id"]: int(r["attempts"]) for r in runs}
        extra = sum(max(0, starts[run_id] - attempts.get(run_id, 0)) for run_id in starts)
        print(
            f"executions: {sum(starts.values()):,} starts for {len(starts):,} runs, "
            f"{sum(attempts.values()):,} attempts recorded; starts beyond attempts: {extra}; "
            f"installations with more than one run: {sum(c > 1 for c in per_company.values())}"
        )
    if kill:
        delays = kill["delays"]
        where = "another host (lease rewritten)" if args.foreign else "the same host"
        if delays:
            print(
                f"kill -9 of one worker holding {kill['held']} runs, as if on {where}: resumed "
                f"elsewhere after {min(delays):.1f}..{max(delays):.1f} s "
                f"(median {statistics.median(delays):.1f} s; lease {args.lease} s)"
            )
        else:
            print(f"kill -9 of one worker: it held {kill['held']} runs at that moment")


if __name__ == "__main__":
    main()
