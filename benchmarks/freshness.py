"""Freshness against requests: how soon a change in Procore reaches the destination with
webhooks and with polling only, and what each costs of a company's hourly request budget.

    python -m benchmarks.freshness [--projects 300] [--records 3] [--changes 60]
        [--change-rate 0.5] [--poll-seconds 90]

Runs the bundled simulator in this process (SimulatorServer on a loopback port) with one
company of `--projects` projects, and the service as `connector serve` in its own process on
a temporary SQLite database and SQLite destination, installed for that company with every
stream. Prints figures, each next to its goal where there is one; asserts nothing.

What is measured, in this order:

1. Setup (not measured): the first full sync, with the simulator's limits raised and the
   service assuming a huge hourly limit, so a 300-project company is synced in a minute or
   two instead of the hours 3,600 requests an hour would take. `CONNECTOR_HISTORY_DAYS=30`
   cuts the daily-log backfill (it changes nothing below: later runs read a 7-day lookback).
2. A quiet reconciliation: a manual run of the unchanged company (limits still raised). It
   reads every unit once, as reconciliation does over its interval and as every polling pass
   does; its requests, split into company-wide and per-project, give the figures below.
3. Then Procore's limits (3,600 an hour, 25 in a rolling 10 s) are switched on, the service
   restarts with its default budget (CONNECTOR_REQUEST_BUDGET_SHARE of 3,600 = 2,880 an
   hour) and the setup's requests are forgotten from its ledger (as if the setup was hours
   ago). With CONNECTOR_PUBLIC_URL set, `--changes` records change at `--change-rate` a
   second (updates, some creates and deletes, across ordinary streams and random projects);
   the simulator delivers the webhooks. Lag = the row's `synced_at` in the destination minus
   the moment the change was made in the simulator. The requests made meanwhile (the
   simulator's log for the company) over the changes give requests per 1,000 changed records.
   Polling's figure is its hourly spend (a pass, at most the budget) over this workload's
   changes an hour: a pass lands every change made before it, however many.
4. A quiet window with webhooks: one scheduled run (as if its hour came) and one
   subscription check, nothing else; their requests are measured. A quiet hour is then
   extrapolated exactly as: the scheduled run x (3,600 s / the schedule, 1 h) + the check x
   (3,600 s / CONNECTOR_WEBHOOK_RESUBSCRIBE_SECONDS) + the quiet reconciliation of step 2
   without its projects listing x (3,600 s / CONNECTOR_RECONCILE_INTERVAL_SECONDS), the
   steady share reconciliation reads each hour (it reads at most 1.25x that while catching up).
5. Polling only: the service restarts without CONNECTOR_PUBLIC_URL (it deletes its hook),
   the same number of records change at once and a scheduled run starts at once (the best
   case for polling). Landings are watched for `--poll-seconds`; a change not landed by then
   is counted as "more than" its age, so the measured polling percentiles are lower bounds.
   Polling's steady state is computed from step 2: a pass reads every unit; it runs hourly
   if the budget allows, else it takes pass / budget hours; a change waits for the next read
   of its unit, uniformly: p50 = half the pass period, p95 = 95% of it.

The largest company that stays complete within its budget (quiet): with webhooks, the most
projects whose reconciliation share plus the scheduled runs and checks fit the budget; with
polling only, the most projects whose hourly pass fits it; and the most projects whose quiet
hour with webhooks stays under the 10% goal. All from step 2's requests per project and
company-wide, with the projects listing growing one page per 300 projects.

Approximations: records are few per stream and project (`--records`), so each listing is one
page, as most incremental reads of a real project are; real projects with more changed records
per window cost more pages. The service's scheduler tick and webhook-check poll are 1 s
(defaults 5 s and 30 s) so the scheduled run and check of step 4 start promptly; discovery is
off (the company is installed directly). Everything shares this machine, so lags include time
waiting for a CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sqlite3
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.core.database import unit_of_work, utcnow
from app.core.logging import configure_logging
from app.core.migrations import upgrade_to_head
from app.core.server_thread import free_port
from app.core.settings import Settings
from app.credentials.crypto import generate_key
from app.installations import service as installations
from app.procore.catalog import STREAMS, Scope
from app.runs import queue
from app.runtime import build_runtime
from app.webhooks import repository as webhooks_repository
from benchmarks.webhook_ingest import percentile, start_connector, stop_service
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer

HOURLY_LIMIT = 3600
SPIKE_LIMIT = 25
SPIKE_SECONDS = 10.0
GOAL_P95_SECONDS = 10.0
GOAL_QUIET_SHARE = 0.10
SETUP_HOURLY_LIMIT = 10_000_000
# Streams read by updated_at whose records the workload changes (all have webhook resources).
CHANGED_STREAMS = (
    "rfis",
    "submittals",
    "observations",
    "punch_items",
    "change_events",
    "work_order_contracts",
    "purchase_order_contracts",
    "prime_contracts",
    "documents",
    "checklists",
    "timesheets",
)
KINDS = ("update",) * 8 + ("create", "delete")
PROJECTS_PER_PAGE = 300
RUN_TIMEOUT_SECONDS = 900.0


@dataclass
class Change:
    """One change made in the simulator, and when (if) its row landed."""

    stream: str
    record_id: int
    kind: str
    at: float  # epoch seconds, just before the simulator made it
    updated_at: datetime | None = None  # what an update's row must show
    landed_at: float | None = None  # the row's synced_at, epoch seconds

    @property
    def lag(self) -> float | None:
        """Seconds from the change to its row, once landed."""
        return None if self.landed_at is None else max(0.0, self.landed_at - self.at)


@dataclass
class Bench:
    """The simulator, the service's files and settings, and what the phases measured."""

    sim: SimulatorServer
    work: Path
    settings: Settings
    env: dict[str, str]
    company_id: int
    admin_token: str
    rng: random.Random
    used: set[tuple[str, int]] = field(default_factory=set)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def destination(self) -> Path:
        """The destination's SQLite file."""
        return self.work / "destination.db"


# ---- the service ----------------------------------------------------------------------------


class Service:
    """`connector serve` on the benchmark's database, with an admin client."""

    def __init__(self, bench: Bench, port: int, **extra: str) -> None:
        env = bench.env | {"CONNECTOR_" + name.upper(): value for name, value in extra.items()}
        self.process = start_connector(["serve", "--port", str(port)], env, bench.work, port)
        self.bench = bench
        self.admin = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {bench.admin_token}"},
            timeout=30,
        )

    def stop(self) -> None:
        """Stops the service (gracefully) and closes the client."""
        self.admin.close()
        stop_service(self.process)

    def runs(self) -> list[dict[str, Any]]:
        """The company's runs, newest first, with per-stream figures."""
        answer = self.admin.get(
            "/admin/v1/syncs",
            params={"company_id": self.bench.company_id, "limit": 500, "view": "full"},
        )
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()
        return found

    def wait_run(self, run_id: str) -> dict[str, Any]:
        """Waits for a run to end; returns it."""
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            run: dict[str, Any] = self.admin.get(f"/admin/v1/syncs/{run_id}").json()
            if run["status"] in ("succeeded", "failed", "cancelled"):
                if run["status"] != "succeeded":
                    raise RuntimeError(f"run {run_id} {run['status']}: {run.get('error')}")
                return run
            time.sleep(0.5)
        raise TimeoutError(f"run {run_id} did not end in {RUN_TIMEOUT_SECONDS:.0f} s")

    def settled(self) -> bool:
        """Whether no event waits and no run is queued or going."""
        company = self.bench.company_id
        view = self.admin.get(f"/admin/v1/installations/{company}/freshness").json()
        busy = any(r["status"] in ("queued", "running") for r in self.runs()[:20])
        return view["webhooks"]["open_events"] == 0 and not busy

    def wait_settled(self, timeout: float = 120) -> None:
        """Waits until `settled`."""
        deadline = time.monotonic() + timeout
        while not self.settled():
            if time.monotonic() > deadline:
                raise TimeoutError("the service did not settle")
            time.sleep(0.5)


def service_env(sim: SimulatorServer, work: Path, key: str, admin_token: str) -> dict[str, str]:
    """The service's CONNECTOR_* variables shared by every phase."""
    config = sim.state.config
    return {
        "CONNECTOR_MODE": "test",
        "CONNECTOR_DATABASE_URL": f"sqlite:///{work / 'connector.db'}",
        "CONNECTOR_ENCRYPTION_KEYS": key,
        "CONNECTOR_ADMIN_TOKENS": admin_token,
        "CONNECTOR_CLIENT_ID": config.client_id,
        "CONNECTOR_CLIENT_SECRET": config.client_secret,
        "CONNECTOR_PROCORE_API_URL": sim.url,
        "CONNECTOR_PROCORE_LOGIN_URL": sim.url,
        "CONNECTOR_DESTINATION_URL": f"sqlite:///{work / 'destination.db'}",
        "CONNECTOR_DESTINATION_ROOT": str(work),
        "CONNECTOR_DISCOVERY_INTERVAL_SECONDS": "0",
        "CONNECTOR_SCHEDULER_TICK_SECONDS": "1",
        "CONNECTOR_WEBHOOK_CHECK_SECONDS": "1",
        "CONNECTOR_HISTORY_DAYS": "30",
        "CONNECTOR_LOG_LEVEL": "WARNING",
    }


async def install(settings: Settings, company_id: int, name: str) -> None:
    """Migrates the service database and installs the company (its first sync is queued)."""
    await asyncio.to_thread(upgrade_to_head, settings.database_url)
    rt = build_runtime(settings)
    try:
        async with unit_of_work(rt.sessions) as session:
            await installations.install(session, rt, company_id=company_id, company_name=name)
    finally:
        await rt.aclose()


async def forget_usage(settings: Settings) -> None:
    """Forgets every request the service counted against its hourly budget so far."""
    rt = build_runtime(settings)
    try:
        async with unit_of_work(rt.sessions) as session:
            await webhooks_repository.prune_usage(session, utcnow() + timedelta(minutes=5))
    finally:
        await rt.aclose()


async def quiet_hour_work(settings: Settings, company_id: int) -> str:
    """Makes the subscription check due now and queues a scheduled run; returns its id."""
    rt = build_runtime(settings)
    try:
        async with unit_of_work(rt.sessions) as session:
            row = await webhooks_repository.subscription(session, company_id, for_update=True)
            if row is not None:
                row.next_check_at = utcnow()
            run, _ = await queue.enqueue(session, company_id, trigger="schedule")
            return run.id
    finally:
        await rt.aclose()


async def schedule_run(settings: Settings, company_id: int) -> str:
    """Queues a scheduled run now (as if the schedule came due); returns its id."""
    rt = build_runtime(settings)
    try:
        async with unit_of_work(rt.sessions) as session:
            run, _ = await queue.enqueue(session, company_id, trigger="schedule")
            return run.id
    finally:
        await rt.aclose()


async def checked_at(settings: Settings, company_id: int) -> datetime | None:
    """When the company's webhook subscription was last checked."""
    rt = build_runtime(settings)
    try:
        async with rt.sessions() as session:
            row = await webhooks_repository.subscription(session, company_id)
            return row.checked_at if row is not None else None
    finally:
        await rt.aclose()


# ---- changes and landings -------------------------------------------------------------------


def requests_between(bench: Bench, start: float, end: float) -> list[dict[str, Any]]:
    """The company's Procore API requests logged in [start, end]."""
    log = bench.sim.state.request_log(path_prefix="/rest/", company_id=bench.company_id)
    return [entry for entry in log if start <= entry["time"] <= end]


def request_kinds(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Requests by what they read: the Webhooks API, delete feeds, the projects list, or
    listings of records."""
    kinds: dict[str, int] = {}
    for entry in entries:
        path, query = entry["path"], entry["query"]
        if "/webhooks/" in path:
            kind = "webhooks API"
        elif "recycle_bin" in path or any(
            key in query
            for key in ("filters[include_deleted]", "filters[is_in_recycle_bin]", "deleted_at")
        ):
            kind = "delete feeds"
        elif path.endswith("/projects"):
            kind = "projects list"
        else:
            kind = "listings"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def make_change(bench: Bench) -> Change:
    """Changes one record nobody changed before, in a random stream and project."""
    state = bench.sim.state
    projects = state.project_ids(bench.company_id)
    while True:
        stream = bench.rng.choice(CHANGED_STREAMS)
        project_id = bench.rng.choice(projects)
        kind = bench.rng.choice(KINDS)
        if kind == "create":
            at = time.time()
            record = state.create_record(stream, bench.company_id, project_id, None)
            bench.used.add((stream, int(record["id"])))
            return Change(stream, int(record["id"]), kind, at)
        free = [
            r
            for r in state.records(stream, bench.company_id, project_id)
            if (stream, int(r["id"])) not in bench.used
        ]
        if not free:
            continue
        record_id = int(bench.rng.choice(free)["id"])
        bench.used.add((stream, record_id))
        at = time.time()
        if kind == "delete":
            state.delete_record(stream, record_id)
            return Change(stream, record_id, kind, at)
        updated = state.update_record(stream, record_id, {})
        return Change(stream, record_id, kind, at, updated_at=parse_time(updated["updated_at"]))


def parse_time(value: Any) -> datetime:
    """A timestamp as SQLite or the simulator shows it, in UTC."""
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_landings(bench: Bench, changes: list[Change]) -> int:
    """Notes which changes reached their row in the destination; returns how many have."""
    waiting: dict[str, dict[int, Change]] = {}
    for change in changes:
        if change.landed_at is None:
            waiting.setdefault(change.stream, {})[change.record_id] = change
    if not waiting or not bench.destination.exists():
        return sum(c.landed_at is not None for c in changes)
    uri = f"file:{bench.destination}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as db:
        for stream, by_id in waiting.items():
            marks = ",".join("?" * len(by_id))
            try:
                rows = db.execute(
                    f'SELECT id, updated_at, deleted_at, synced_at FROM "{stream}" '
                    f"WHERE company_id = ? AND id IN ({marks})",
                    (bench.company_id, *by_id),
                ).fetchall()
            except sqlite3.OperationalError:
                continue  # the table is being created
            for record_id, updated_at, deleted_at, synced_at in rows:
                change = by_id[int(record_id)]
                if landed(change, updated_at, deleted_at):
                    change.landed_at = parse_time(synced_at).timestamp()
    return sum(c.landed_at is not None for c in changes)


def landed(change: Change, updated_at: Any, deleted_at: Any) -> bool:
    """Whether a destination row shows the change."""
    if change.kind == "delete":
        return deleted_at is not None
    if change.kind == "create":
        return True
    assert change.updated_at is not None
    return updated_at is not None and parse_time(updated_at) >= change.updated_at


def lag_figures(changes: list[Change], horizon: float | None = None) -> str:
    """p50/p95/max of the lags; with a horizon, changes not landed count as "more than"."""
    lags = [c.lag for c in changes if c.lag is not None]
    if horizon is None:
        values = sorted(lags)
        return (
            f"p50 {percentile(values, 0.5):.1f} s, p95 {percentile(values, 0.95):.1f} s, "
            f"max {max(values, default=math.nan):.1f} s ({len(lags)}/{len(changes)} landed)"
        )
    censored = sorted([*lags, *([math.inf] * (len(changes) - len(lags)))])
    parts = []
    for share in (0.5, 0.95):
        value = percentile(censored, share)
        parts.append(
            f"p{round(share * 100)} "
            + (f"> {horizon:.0f} s" if math.isinf(value) else f"{value:.1f} s")
        )
    return ", ".join(parts) + f" ({len(lags)}/{len(changes)} landed within {horizon:.0f} s)"


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    """Polls a condition twice a second."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.5)


def changes_summary(changes: list[Change]) -> str:
    """How many of each kind, across how many streams."""
    kinds = {kind: sum(c.kind == kind for c in changes) for kind in ("update", "create", "delete")}
    streams = len({c.stream for c in changes})
    counts = [f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in kinds.items()]
    return ", ".join(counts) + f" in {streams} streams"


# ---- the phases -----------------------------------------------------------------------------


def setup_and_quiet_pass(bench: Bench, port: int) -> None:
    """The first full sync, then a manual run of the quiet company (limits raised)."""
    service = Service(
        bench,
        port,
        public_url=f"http://127.0.0.1:{port}",
        procore_hourly_limit=str(SETUP_HOURLY_LIMIT),
    )
    try:
        wait_for(lambda: bool(service.runs()), 60, "the install run")
        full = service.wait_run(service.runs()[-1]["run_id"])
        company = bench.company_id
        view = service.admin.get(f"/admin/v1/installations/{company}/freshness").json()
        hooks = view["webhooks"]
        print(
            f"setup (limits raised, not measured): first full sync {full['requests']:,} "
            f"requests in {full['duration_seconds']:.0f} s; hook {hooks['status']}, "
            f"{len(hooks['covered_streams'])} of {len(view['streams'])} streams covered"
        )
        time.sleep(1.1)  # the next run's window starts after everything the first could see
        queued = service.admin.post(f"/admin/v1/installations/{company}/syncs")
        queued.raise_for_status()
        bench.figures["pass"] = service.wait_run(queued.json()["run_id"])
    finally:
        service.stop()


def split_pass(run: dict[str, Any]) -> tuple[int, int, float, int]:
    """(total, company-wide requests, requests per project, projects read) of a quiet pass."""
    total = int(run["requests"])
    streams = run["streams"]
    project_scoped = {name for name in streams if STREAMS[name].scope == Scope.project}
    per_stream = sum(int(streams[name]["requests"]) for name in project_scoped)
    projects = max((int(streams[name]["units_total"]) for name in project_scoped), default=0)
    company_wide = total - per_stream  # the company's lists and anything no stream claimed
    return total, company_wide, per_stream / max(projects, 1), projects


def webhook_phase(bench: Bench, port: int, changes: int, rate: float) -> None:
    """Production limits, webhooks on: the lag of paced changes, then a quiet window."""
    service = Service(bench, port, public_url=f"http://127.0.0.1:{port}")
    try:
        service.wait_settled()
        start = time.time()
        made: list[Change] = []
        next_at = time.monotonic()
        for _ in range(changes):
            while time.monotonic() < next_at:
                check_landings(bench, made)
                time.sleep(min(0.25, max(0.0, next_at - time.monotonic())))
            made.append(make_change(bench))
            next_at += 1 / rate
        wait_for(lambda: check_landings(bench, made) == len(made), 180, "every change landing")
        service.wait_settled()
        end = time.time()
        runs = [r for r in service.runs() if r["trigger"] == "webhook"]
        bench.figures["webhooks"] = (
            made,
            requests_between(bench, start, end),
            len(runs),
            end - start,
        )
        bench.figures["quiet"] = quiet_window(bench, service)
    finally:
        service.stop()


def quiet_window(bench: Bench, service: Service) -> tuple[int, int, int, float]:
    """One scheduled run and one subscription check, nothing else; returns (requests of the
    run, of the check, in the window, the window's seconds)."""
    before = asyncio.run(checked_at(bench.settings, bench.company_id))
    start = time.time()
    run = service.wait_run(asyncio.run(quiet_hour_work(bench.settings, bench.company_id)))

    def checked() -> bool:
        after = asyncio.run(checked_at(bench.settings, bench.company_id))
        return after is not None and (before is None or after > before)

    wait_for(checked, 60, "the subscription check")
    service.wait_settled()
    end = time.time()
    window = requests_between(bench, start, end)
    check = sum("/webhooks/" in entry["path"] for entry in window)
    return int(run["requests"]), check, len(window), end - start


def polling_phase(bench: Bench, changes: int, seconds: float) -> None:
    """Webhooks off: changes at once, a scheduled run at once, landings for `seconds`."""
    port = free_port()
    service = Service(bench, port)
    hooks = bench.sim.state.webhooks.hooks
    try:
        wait_for(
            lambda: all(h.company_id != bench.company_id for h in list(hooks.values())),
            60,
            "the hook's removal",
        )
        service.wait_settled()
        start = time.time()
        made = [make_change(bench) for _ in range(changes)]
        asyncio.run(schedule_run(bench.settings, bench.company_id))
        while time.time() < start + seconds and check_landings(bench, made) < len(made):
            time.sleep(0.5)
        end = time.time()
        bench.figures["polling"] = (made, requests_between(bench, start, end), end - start)
    finally:
        service.stop()


# ---- the report -----------------------------------------------------------------------------


def largest_company(cost: Any, planned: float) -> int:
    """The most projects whose hourly cost fits the plan (the cost grows with projects)."""
    low, high = 0, 1
    while cost(high) <= planned and high < 10**7:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if cost(middle) <= planned else (low, middle)
    return low


def hours(seconds: float) -> str:
    """Seconds as seconds, minutes or hours."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.2f} h"


def report(bench: Bench, args: argparse.Namespace) -> None:
    """Prints every figure, with goals and ratios to the polling baseline."""
    settings = bench.settings
    planned = HOURLY_LIMIT * settings.request_budget_share
    schedule_seconds = 3600.0  # the default schedule, every 1h
    pass_total, company_wide, per_project, projects = split_pass(bench.figures["pass"])
    listing = int(bench.figures["pass"]["streams"]["projects"]["requests"])
    print(
        f"quiet reconciliation (one read of every unit, limits raised): {pass_total:,} "
        f"requests = {per_project:.1f} per project x {projects} projects + {company_wide} "
        f"company-wide ({listing} of them the projects listing), "
        f"{bench.figures['pass']['duration_seconds']:.0f} s"
    )

    made, used, targeted, _ = bench.figures["webhooks"]
    webhook_lags = sorted(c.lag for c in made if c.lag is not None)
    p50 = percentile(webhook_lags, 0.5)
    p95 = percentile(webhook_lags, 0.95)
    polled, poll_used, poll_window = bench.figures["polling"]
    pass_seconds = max(schedule_seconds, pass_total / planned * 3600)
    print(
        f"lag from a change in Procore to its row in the destination ({len(made)} changes at "
        f"{args.change_rate:g}/s: {changes_summary(made)}):"
    )
    goal = "met" if p95 < GOAL_P95_SECONDS else "NOT met"
    print(f"  webhooks: {lag_figures(made)}   goal p95 < {GOAL_P95_SECONDS:.0f} s: {goal}")
    print(
        f"  polling only, measured: {lag_figures(polled, poll_window)} after a scheduled run "
        f"started at once; it made {len(poll_used)} requests "
        f"({len(poll_used) / poll_window:.1f}/s, the 25-per-10-s limit)"
    )
    print(
        f"  polling only, steady state: a pass of {pass_total:,} requests "
        + (
            "fits the hourly budget, so it runs hourly"
            if pass_total <= planned
            else f"takes {pass_total / planned:.2f} h of the budget ({planned:,.0f}/h)"
        )
        + f": p50 {hours(pass_seconds / 2)}, p95 {hours(pass_seconds * 0.95)}"
    )
    landed_poll = [c.lag for c in polled if c.lag is not None]
    bound = (
        f"; measured lower bound p50 >= {poll_window / p50:,.0f}x"
        if len(landed_poll) < len(polled) / 2
        else ""
    )
    print(
        f"  ratio polling / webhooks: p50 {pass_seconds / 2 / p50:,.0f}x, "
        f"p95 {pass_seconds * 0.95 / p95:,.0f}x (steady state){bound}"
    )

    per_thousand = len(used) / len(made) * 1000
    hourly_changes = args.change_rate * 3600
    poll_hour = min(pass_total, planned)
    poll_per_thousand = poll_hour / hourly_changes * 1000
    print("requests per 1,000 changed records:")
    print(
        f"  webhooks: {per_thousand:,.0f} ({len(used)} requests for {len(made)} changes in "
        f"{targeted} targeted runs: {request_kinds(used)})"
    )
    in_window = (
        f"{len(poll_used)} requests landed {len(landed_poll)} change(s) = "
        f"{len(poll_used) / len(landed_poll) * 1000:,.0f} per 1,000"
        if landed_poll
        else f"{len(poll_used)} requests landed none"
    )
    print(
        f"  polling only: {poll_per_thousand:,.0f}: a pass lands every change made before it, "
        f"however many, and costs {poll_hour:,.0f} requests an hour whatever changes; at this "
        f"workload's {hourly_changes:,.0f} changes/h that is the figure (measured in the "
        f"polling window: {in_window})"
    )
    print(f"  ratio polling / webhooks: {poll_per_thousand / per_thousand:.2f}x")

    sched, check, window, window_seconds = bench.figures["quiet"]
    interval = settings.reconcile_interval_seconds
    resubscribe = settings.webhook_resubscribe_seconds
    reconcile = (pass_total - listing) * 3600 / interval
    quiet_hour = reconcile + sched * 3600 / schedule_seconds + check * 3600 / resubscribe
    share = quiet_hour / planned
    print(
        f"requests in a quiet hour (measured quiet window: {window} requests in "
        f"{window_seconds:.0f} s = one scheduled run {sched} + one subscription check {check}):"
    )
    goal = "met" if share < GOAL_QUIET_SHARE else "NOT met"
    print(
        f"  webhooks: {quiet_hour:,.0f} = reconciliation {pass_total - listing:,} x 3,600 / "
        f"{interval:,} s = {reconcile:,.0f} + the scheduled run {sched} x "
        f"{3600 / schedule_seconds:g} + the check {check} x {3600 / resubscribe:g} "
        f"= {share:.1%} of the {planned:,.0f} budget   goal < {GOAL_QUIET_SHARE:.0%}: {goal}"
    )
    print(
        f"  polling only: {pass_total:,} (a pass an hour) = {pass_total / planned:.0%} of the "
        f"budget" + ("" if pass_total <= planned else f", so capped at {planned:,.0f}")
    )
    print(f"  ratio polling / webhooks: {min(pass_total, planned) / quiet_hour:.1f}x")

    others = company_wide - listing

    def listing_pages(count: int) -> int:
        return max(1, math.ceil(count / PROJECTS_PER_PAGE))

    def webhook_cost(count: int) -> float:
        reads = others + per_project * count
        fixed = (sched - listing + listing_pages(count)) * 3600 / schedule_seconds
        return reads * 3600 / interval + fixed + check * 3600 / resubscribe

    def polling_cost(count: int) -> float:
        return (others + listing_pages(count) + per_project * count) * 3600 / schedule_seconds

    print(f"largest company that stays complete within its budget ({planned:,.0f}/h, quiet):")
    print(
        f"  webhooks: {largest_company(webhook_cost, planned):,} projects (each read once per "
        f"{interval / 3600:g} h by reconciliation)"
    )
    print(
        f"  polling only: {largest_company(polling_cost, planned):,} projects (each read once "
        "an hour by the schedule)"
    )
    print(
        f"  webhooks with a quiet hour under {GOAL_QUIET_SHARE:.0%} of the budget: "
        f"{largest_company(webhook_cost, planned * GOAL_QUIET_SHARE):,} projects"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", type=int, default=300)
    parser.add_argument("--records", type=int, default=3, help="per stream and project")
    parser.add_argument("--changes", type=int, default=60, help="records changed per phase")
    parser.add_argument("--change-rate", type=float, default=0.5, help="changes a second")
    parser.add_argument("--poll-seconds", type=float, default=90.0, help="polling window")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    work = Path(tempfile.mkdtemp(prefix="freshness-bench-"))
    key = generate_key("bench")
    admin_token = uuid.uuid4().hex
    config = SimulatorConfig.lenient(
        companies=1, projects=args.projects, records=args.records, seed=args.seed
    )
    started = time.monotonic()
    with SimulatorServer(config, host="127.0.0.1", port=0) as sim:
        company = sim.state.companies()[0]
        env = service_env(sim, work, key, admin_token)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            mode="test",
            database_url=env["CONNECTOR_DATABASE_URL"],
            encryption_keys=key,
            client_id=config.client_id,
            client_secret=config.client_secret,
            procore_api_url=sim.url,
            procore_login_url=sim.url,
            destination_url=env["CONNECTOR_DESTINATION_URL"],
            destination_root=str(work),
            log_level="WARNING",
        )
        bench = Bench(
            sim, work, settings, env, company["id"], admin_token, random.Random(args.seed)
        )
        print(
            f"freshness benchmark: 1 company, {args.projects} projects, {len(STREAMS)} streams, "
            f"{args.records} records per stream and project; Procore limits {HOURLY_LIMIT:,}/h "
            f"and {SPIKE_LIMIT} per {SPIKE_SECONDS:g} s; budget "
            f"{settings.request_budget_share:.0%} of {HOURLY_LIMIT:,} an hour"
        )
        asyncio.run(install(settings, company["id"], company["name"]))
        port = free_port()
        setup_and_quiet_pass(bench, port)
        sim.state.set_limits(HOURLY_LIMIT, SPIKE_LIMIT, SPIKE_SECONDS)
        asyncio.run(forget_usage(settings))
        webhook_phase(bench, port, args.changes, args.change_rate)
        polling_phase(bench, args.changes, args.poll_seconds)
        report(bench, args)
    print(f"total time: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
