"""Webhook ingest: how many Procore deliveries one API process stores per second, and how fast
it answers them (SPEC section 8: at least 1,000 a second with a p99 answer time under 500 ms).

    python -m benchmarks.webhook_ingest [--deliveries 20000] [--concurrency 256]
        [--rate 1000] [--seconds 10] [--processes 2] [--sqlite]

Creates a fresh PostgreSQL database (`--postgres`, default CONNECTOR_TEST_POSTGRES_URL or
postgresql://postgres@127.0.0.1:5432/postgres; `--sqlite` uses a temporary SQLite file
instead), migrates it, installs one company in it and makes its webhook secret the way the
service does (app.webhooks.secrets.ensure_secret: a random secret sealed in the
credentials vault; deliveries carry `Authorization: Bearer <secret>`, the value the service
puts in the hook's destination_headers). Then it starts one `connector serve --role api`
process on a loopback port (no worker: stored events stay in the inbox, so only receiving is
measured) and fires valid v2.0 deliveries at `/webhooks/procore/{company_id}` from
`--processes` load processes, each with several httpx clients:

1. a warm-up (the endpoint cache, connections), left out of the figures;
2. a burst: `--deliveries` deliveries, `--concurrency` in flight at any time (closed loop);
   deliveries/s is their count over the wall time of the burst;
3. a paced phase: `--rate` deliveries a second for `--seconds` (open loop); each answer time
   is counted from the moment the delivery was due, so a server that falls behind shows it.

Every `--duplicate-every`-th delivery repeats the one five before it (same ulid, as Procore's
at-least-once redelivery does), so the inbox must store each event once: the count stored is
checked against the distinct events sent. The database is dropped at the end.

Approximations: the load processes share the machine with the service and PostgreSQL, so on
a small machine the answer times include time a client waited for a CPU: they are an upper
bound of the server's own. Deliveries come over loopback HTTP/1.1 with keep-alive (Procore's
come over TLS, which ends in front of the service in a real deployment). The service runs with
its defaults except `CONNECTOR_LOG_LEVEL` (`--log-level`, default INFO as deployed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app.core.database import unit_of_work
from app.core.migrations import upgrade_to_head
from app.core.server_thread import free_port
from app.core.settings import Settings
from app.credentials.crypto import generate_key
from app.installations import service as installations
from app.runs import queue
from app.runtime import build_runtime
from app.webhooks.models import WebhookEvent
from app.webhooks.secrets import ensure_secret, header_value
from app.webhooks.subscriptions import RECEIVER_PATH
from procore_sim.webhooks.model import stamp, ulid

GOAL_RATE = 1000.0
GOAL_P99_MS = 500.0
COMPANY_ID = 4_200_001
CLIENT_ID = "bench-client-id"
CLIENT_SECRET = "bench-client-secret"  # never used: no Procore call is made
RESOURCES = ("RFIs", "Submittals", "Observation Items", "Punch Items", "Change Events")
ANSWER_TIMEOUT_SECONDS = 10.0  # Procore gives up after 5 s; longer only to see the tail

Post = Callable[[int, float], Awaitable[None]]


@dataclass(frozen=True)
class Job:
    """What one load process sends."""

    url: str
    header: str
    company_id: int
    first: int = 0
    count: int = 0
    duplicate_every: int = 10
    concurrency: int = 32
    rate: float = 0.0  # deliveries a second (paced); 0: as fast as the concurrency allows
    start_at: float = 0.0  # the wall-clock second every process begins at


@dataclass
class Outcome:
    """What one load process measured (answer times in seconds, as an array of doubles)."""

    latencies: bytes = b""
    answers: Counter[str] = field(default_factory=Counter)
    distinct: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0


@dataclass
class Phase:
    """One phase's figures over every load process."""

    latencies: list[float]
    answers: Counter[str]
    distinct: list[str]
    wall: float
    service_cpu: float = math.nan  # CPU seconds the service process used in the phase

    @property
    def rate(self) -> float:
        """Deliveries answered per second of the phase."""
        return len(self.latencies) / self.wall if self.wall > 0 else math.nan

    @property
    def p99_ms(self) -> float:
        """The 99th percentile answer time in milliseconds."""
        return percentile(self.latencies, 0.99) * 1000


def delivery(company_id: int, index: int, moment: float) -> tuple[str, bytes]:
    """One v2.0 delivery (its ulid, its body) as Procore sends it."""
    key = ulid(moment)
    project_id = 1000 + index % 300
    body = {
        "id": 10**12 + index,
        "ulid": key,
        "timestamp": stamp(moment),
        "user_id": 7,
        "company_id": company_id,
        "project_id": project_id,
        "api_version": "v2.0",
        "event_type": ("update", "update", "update", "create", "delete")[index % 5],
        "resource_name": RESOURCES[index % len(RESOURCES)],
        "resource_id": 5_000_000 + index,
        "metadata": {
            "source_user_id": 7,
            "source_company_id": company_id,
            "source_project_id": project_id,
            "source_application_id": None,
            "source_operation_id": None,
        },
    }
    return key, json.dumps(body).encode()


def bodies(job: Job) -> tuple[list[bytes], list[str]]:
    """The job's bodies in sending order (every n-th repeats the one five before it) and the
    distinct ulids among them."""
    out: list[bytes] = []
    keys: list[str] = []
    now = time.time()
    for offset in range(job.count):
        if job.duplicate_every and offset >= 5 and (offset + 1) % job.duplicate_every == 0:
            out.append(out[offset - 5])
            continue
        key, body = delivery(job.company_id, job.first + offset, now)
        out.append(body)
        keys.append(key)
    return out, keys


def fire(job: Job) -> Outcome:
    """Runs one load process's share (in a child process)."""
    return asyncio.run(_fire(job))


async def _fire(job: Job) -> Outcome:
    payloads, keys = bodies(job)
    outcome = Outcome(distinct=keys)
    latencies = array("d")
    # One client (one keep-alive connection) per sender, as Procore's delivery workers are:
    # a shared pool of many connections costs the load process more CPU than the service.
    clients: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
    for _ in range(job.concurrency):
        clients.put_nowait(
            httpx.AsyncClient(
                base_url=job.url,
                timeout=httpx.Timeout(ANSWER_TIMEOUT_SECONDS),
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
        )
    path = f"{RECEIVER_PATH}/{job.company_id}"
    headers = {"Authorization": job.header, "Content-Type": "application/json"}

    async def post(index: int, due: float) -> None:
        client = await clients.get()  # waits while every sender is busy
        try:
            answer = await client.post(path, content=payloads[index], headers=headers)
            status = answer.json().get("status") if answer.status_code == 200 else None
            outcome.answers[status or f"http {answer.status_code}"] += 1
        except httpx.HTTPError as exc:
            outcome.answers[type(exc).__name__] += 1
        finally:
            clients.put_nowait(client)
        latencies.append(time.perf_counter() - due)

    delay = job.start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    outcome.started = time.time()
    if job.rate > 0:
        await _paced(job, post)
    else:
        await _burst(job, post)
    outcome.ended = time.time()
    while not clients.empty():
        await clients.get_nowait().aclose()
    outcome.latencies = latencies.tobytes()
    return outcome


async def _burst(job: Job, post: Post) -> None:
    """Closed loop: `concurrency` senders, each sending its next delivery once answered."""
    cursor = iter(range(job.count))

    async def sender() -> None:
        for index in cursor:
            await post(index, time.perf_counter())

    await asyncio.gather(*(sender() for _ in range(job.concurrency)))


async def _paced(job: Job, post: Post) -> None:
    """Open loop: delivery k is due at start + k / rate; answer times count from then (a
    delivery waiting for a free sender counts its wait)."""
    tasks: set[asyncio.Task[None]] = set()
    origin = time.perf_counter()
    for index in range(job.count):
        due = origin + index / job.rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(post(index, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(
    pool: ProcessPoolExecutor, base: Job, processes: int, total: int, rate: float, pid: int
) -> Phase:
    """Splits a phase over the load processes and gathers what they measured (and the CPU
    time the service process `pid` used meanwhile)."""
    cpu_before = cpu_seconds(pid)
    share = math.ceil(total / processes)
    start_at = time.time() + 1.5  # every process is up and has built its bodies by then
    jobs = [
        replace(
            base,
            first=base.first + number * share,
            count=min(share, total - number * share),
            concurrency=max(1, base.concurrency // processes),
            rate=rate / processes,
            start_at=start_at,
        )
        for number in range(processes)
        if total - number * share > 0
    ]
    outcomes = list(pool.map(fire, jobs))
    phase = Phase([], Counter(), [], 0.0, cpu_seconds(pid) - cpu_before)
    for outcome in outcomes:
        values = array("d")
        values.frombytes(outcome.latencies)
        phase.latencies.extend(values)
        phase.answers.update(outcome.answers)
        phase.distinct.extend(outcome.distinct)
    phase.wall = max(o.ended for o in outcomes) - min(o.started for o in outcomes)
    return phase


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the values lie (nearest rank)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def report(name: str, phase: Phase) -> None:
    """Prints one phase's figures."""
    times = ", ".join(
        f"p{round(share * 100)} {percentile(phase.latencies, share) * 1000:.0f} ms"
        for share in (0.5, 0.95, 0.99)
    )
    print(
        f"{name}: {len(phase.latencies):,} deliveries in {phase.wall:.2f} s "
        f"= {phase.rate:,.0f} deliveries/s"
    )
    print(f"  answer times: {times}, max {max(phase.latencies, default=math.nan) * 1000:.0f} ms")
    print(f"  answers: {dict(sorted(phase.answers.items()))}")
    if phase.service_cpu > 0:
        per = phase.service_cpu / len(phase.latencies) * 1000
        print(
            f"  service CPU: {phase.service_cpu:.1f} s = {per * 1000:.0f} ms per 1,000 "
            f"deliveries (one core to itself would take ~{1000 / per:,.0f} deliveries/s)"
        )


# ---- the service under test ---------------------------------------------------------------


def make_postgres_database(url: str) -> tuple[str, str]:
    """A fresh, empty database beside `url`'s; returns (its URL, its name)."""
    base = make_url(url)
    name = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False), name


def drop_postgres_database(url: str, name: str) -> None:
    """Drops the benchmark's database (closing what still uses it)."""
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_settings(database_url: str, key: str, work: Path) -> Settings:
    """The settings the benchmark prepares the database with (the service gets the same)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        mode="test",
        database_url=database_url,
        encryption_keys=key,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        procore_api_url="http://127.0.0.1:9",
        procore_login_url="http://127.0.0.1:9",
        destination_url=f"sqlite:///{work / 'destination.db'}",
        destination_root=str(work),
        log_level="WARNING",
    )


async def prepare(settings: Settings, company_id: int) -> str:
    """Migrates, installs the company and makes its webhook secret; returns the header."""
    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    rt = build_runtime(settings)
    try:
        async with unit_of_work(rt.sessions) as session:
            await installations.install(
                session, rt, company_id=company_id, company_name="Ingest Bench Co"
            )
            await queue.cancel_for_company(session, company_id, reason="ingest benchmark")
            secret = await ensure_secret(session, rt, company_id)
    finally:
        await rt.aclose()
    return header_value(secret)


async def stored_events(settings: Settings) -> int:
    """Rows in the service's webhook inbox."""
    rt = build_runtime(settings)
    try:
        async with rt.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(WebhookEvent))
    finally:
        await rt.aclose()
    return int(count or 0)


def start_service(
    settings: Settings, key: str, port: int, log_level: str
) -> subprocess.Popen[bytes]:
    """`connector serve --role api` on the prepared database."""
    env = {
        "CONNECTOR_DATABASE_URL": settings.database_url,
        "CONNECTOR_ENCRYPTION_KEYS": key,
        "CONNECTOR_CLIENT_ID": CLIENT_ID,
        "CONNECTOR_CLIENT_SECRET": CLIENT_SECRET,
        "CONNECTOR_PROCORE_API_URL": "http://127.0.0.1:9",
        "CONNECTOR_PROCORE_LOGIN_URL": "http://127.0.0.1:9",
        "CONNECTOR_DESTINATION_URL": settings.destination_url.get_secret_value(),
        "CONNECTOR_DESTINATION_ROOT": str(settings.destination_root),
        "CONNECTOR_DISCOVERY_INTERVAL_SECONDS": "0",
        "CONNECTOR_LOG_LEVEL": log_level,
    }
    arguments = ["serve", "--role", "api", "--port", str(port), "--no-migrate"]
    return start_connector(arguments, env, Path(settings.destination_root), port)


def start_connector(
    arguments: list[str], env: dict[str, str], workdir: Path, port: int
) -> subprocess.Popen[bytes]:
    """`connector <arguments>` in its own process, configured by `env` alone (the caller's
    CONNECTOR_* variables are left out); returns once it answers /livez on `port`. Its output
    goes to `workdir`/service.log."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    command = [str(Path(sys.executable).with_name("connector")), *arguments]
    log_path = workdir / "service.log"
    with log_path.open("ab") as log_file:  # a file, not a pipe: a full pipe stalls the service
        process = subprocess.Popen(
            command, env=inherited | env, cwd=workdir, stdout=log_file, stderr=log_file
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log_path.read_text(errors="replace")
            raise RuntimeError(f"the service did not start: {output[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_service(process)
    raise RuntimeError("the service did not answer /livez within 60 s")


def stop_service(process: subprocess.Popen[bytes]) -> None:
    """Stops the service as an operator would (SIGINT: a graceful stop), then waits."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- the run ------------------------------------------------------------------------------


def measure(
    args: argparse.Namespace, base: Job, pid: int
) -> tuple[Phase, Phase | None, Counter[str], int]:
    """Warm-up, burst, paced phase; returns the two measured phases, every answer and how
    many distinct events were sent."""
    answered: Counter[str] = Counter()
    distinct: set[str] = set()
    with ProcessPoolExecutor(args.processes, mp_context=get_context("spawn")) as pool:
        warm_job = replace(base, concurrency=min(32, args.concurrency))
        warm = run_phase(pool, warm_job, args.processes, 500, 0, pid)
        burst_job = replace(base, first=10_000_000)
        burst = run_phase(pool, burst_job, args.processes, args.deliveries, 0, pid)
        report(f"burst ({args.concurrency} in flight)", burst)
        paced = None
        if args.seconds > 0 and args.rate > 0:
            total = round(args.rate * args.seconds)
            paced_job = replace(base, first=20_000_000)
            paced = run_phase(pool, paced_job, args.processes, total, args.rate, pid)
            report(
                f"paced ({args.rate:,.0f}/s for {args.seconds:g} s; answer times from each "
                "delivery's due time)",
                paced,
            )
    for phase in (warm, burst, paced):
        if phase is not None:
            answered.update(phase.answers)
            distinct.update(phase.distinct)
    return burst, paced, answered, len(distinct)


def conclude(
    burst: Phase, paced: Phase | None, answered: Counter[str], unique: int, stored: int
) -> bool:
    """Prints the dedupe check and the goal; returns whether the goal is met."""
    sent = sum(answered.values())
    errors = sent - answered["stored"] - answered["duplicate"]
    if errors:
        dedupe = f"not checked: {errors:,} deliveries were not answered 200"
    else:
        dedupe = "exact" if stored == unique == answered["stored"] else "WRONG"
    print(
        f"stored: {stored:,} events for {unique:,} distinct ulids in {sent:,} deliveries "
        f"(answered stored {answered['stored']:,}, duplicate {answered['duplicate']:,}); "
        f"dedupe {dedupe}"
    )
    p99s = [burst.p99_ms] + ([paced.p99_ms] if paced is not None else [])
    met = burst.rate >= GOAL_RATE and max(p99s) < GOAL_P99_MS and not errors
    paced_text = (
        f"; paced {paced.rate:,.0f}/s with p99 {paced.p99_ms:.0f} ms" if paced is not None else ""
    )
    print(
        f"goal (>= {GOAL_RATE:,.0f} deliveries/s, p99 < {GOAL_P99_MS:.0f} ms, every delivery "
        f"answered 200): {'met' if met else 'NOT met'}: burst {burst.rate:,.0f}/s with p99 "
        f"{burst.p99_ms:.0f} ms{paced_text}"
    )
    return met


def run(args: argparse.Namespace) -> int:
    """The whole benchmark; returns the exit code (0 even when the goal is not met)."""
    work = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    key = generate_key("bench")
    dropping: tuple[str, str] | None = None
    if args.sqlite:
        database_url, kind = f"sqlite:///{work / 'connector.db'}", "SQLite (--sqlite)"
    else:
        database_url, name = make_postgres_database(args.postgres)
        dropping, kind = (args.postgres, name), f"PostgreSQL (fresh database {name})"
    settings = bench_settings(database_url, key, work)
    port = free_port()
    print(
        f"webhook ingest benchmark: one `connector serve --role api` on {kind}; "
        f"{args.processes} load process(es); service log level {args.log_level}"
    )
    process: subprocess.Popen[bytes] | None = None
    try:
        header = asyncio.run(prepare(settings, COMPANY_ID))
        process = start_service(settings, key, port, args.log_level)
        base = Job(
            url=f"http://127.0.0.1:{port}",
            header=header,
            company_id=COMPANY_ID,
            duplicate_every=args.duplicate_every,
            concurrency=args.concurrency,
        )
        burst, paced, answered, unique = measure(args, base, process.pid)
        stored = asyncio.run(stored_events(settings))
        conclude(burst, paced, answered, unique, stored)
        if process.poll() is not None:
            print("the service exited during the run")
            return 1
        return 0
    finally:
        if process is not None:
            stop_service(process)
        if dropping is not None:
            drop_postgres_database(*dropping)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=20_000, help="in the burst")
    parser.add_argument("--concurrency", type=int, default=256, help="in flight in the burst")
    parser.add_argument("--rate", type=float, default=GOAL_RATE, help="paced deliveries/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="paced phase length")
    parser.add_argument("--processes", type=int, default=2, help="load processes")
    parser.add_argument("--duplicate-every", type=int, default=10)
    parser.add_argument("--log-level", default="INFO", help="the service's log level")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CONNECTOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server URL (a fresh database is made beside its database)",
    )
    sys.exit(run(parser.parse_args()))


if __name__ == "__main__":
    main()
