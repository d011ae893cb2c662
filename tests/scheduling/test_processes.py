"""Worker processes sharing one database: exclusive runs, take-over after a crash, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.database import create_engine, make_sessionmaker
from app.core.migrations import upgrade_to_head
from app.main import Role
from app.runs import queue
from app.runs.models import SyncRun
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import TEST_KEY, RunningService, install_event, make_settings

# Several worker processes share one database, which SQLite cannot do well: these run in the
# PostgreSQL pass of the suite (CONNECTOR_TEST_POSTGRES_URL) and are not collected otherwise.
needs_postgres = pytest.mark.postgres_only


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig.lenient(companies=4, projects=3, records=12, seed=5)


class WorkerProcess:
    """`connector serve --role worker` in a subprocess, logging JSON lines to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        command = "from app.cli import main; main()"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                command,
                "serve",
                "--role",
                "worker",
                "--port",
                "0",
                "--no-migrate",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.worker_id = str(self.wait_for("service started")["worker_id"])

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_for(self, event: str, timeout: float = 30) -> dict[str, Any]:
        """Waits for the first log line with this event."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.events():
                if entry.get("event") == event:
                    return entry
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {event!r} in {self.log_path}")

    def started_runs(self) -> list[str]:
        """Run ids this process began executing (one entry per execution)."""
        return [str(e["run_id"]) for e in self.events() if e.get("event") == "sync started"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def worker_env(
    database_url: str, sim: SimulatorServer, sim_config: SimulatorConfig, destination_url: str
) -> dict[str, str]:
    """Environment of `connector` subprocesses: the migrated test database, the simulator."""
    upgrade_to_head(database_url)
    return {
        **os.environ,
        "CONNECTOR_MODE": "test",
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_PROCORE_API_URL": sim.url,
        "CONNECTOR_PROCORE_LOGIN_URL": sim.url,
        "CONNECTOR_CLIENT_ID": sim_config.client_id,
        "CONNECTOR_CLIENT_SECRET": sim_config.client_secret,
        "CONNECTOR_ENCRYPTION_KEYS": TEST_KEY,
        "CONNECTOR_DISCOVERY_INTERVAL_SECONDS": "0",
        "CONNECTOR_SCHEDULER_TICK_SECONDS": "0.2",
        "CONNECTOR_LEASE_SECONDS": "3",
        "CONNECTOR_HEARTBEAT_SECONDS": "0.5",
        "CONNECTOR_WORKER_CONCURRENCY": "1",
        "CONNECTOR_PER_PAGE": "4",  # several pages per unit: several checkpoints to resume from
        "CONNECTOR_LOG_FORMAT": "json",
        "CONNECTOR_STREAMS": "projects,users,rfis,submittals,observations,punch_items",
        "CONNECTOR_DESTINATION_URL": destination_url,
        "CONNECTOR_DESTINATION_ROOT": str(Path(destination_url.removeprefix("sqlite:///")).parent),
    }


@pytest.fixture
def spawn(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Starts worker processes against the test database and the simulator."""
    workers: list[WorkerProcess] = []

    def start(name: str) -> WorkerProcess:
        worker = WorkerProcess(worker_env, tmp_path / f"{name}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def api(
    database_url: str, sim: SimulatorServer, sim_config: SimulatorConfig, destination_url: str
) -> Iterator[RunningService]:
    """The API role in this process (it never runs syncs): callbacks and the admin API."""
    settings = make_settings(
        database_url=database_url,
        procore_api_url=sim.url,
        procore_login_url=sim.url,
        client_id=sim_config.client_id,
        client_secret=sim_config.client_secret,
        destination_url=destination_url,
        streams="projects,users,rfis,submittals,observations,punch_items",
    )
    with RunningService(settings, Role.api) as running:
        yield running


def load_run(database_url: str, run_id: str) -> SyncRun:
    """A run row read directly from the database (lease columns included)."""

    async def read() -> SyncRun:
        engine = create_engine(database_url)
        try:
            async with make_sessionmaker(engine)() as session:
                return await queue.get(session, run_id)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def wait_until(predicate: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def install(api: RunningService, company_id: int) -> str:
    answer = api.callback(install_event(company_id))
    assert answer.status_code == 202, answer.text
    return api.latest_run_id(company_id)


@needs_postgres
class TestTwoWorkers:
    def test_never_run_the_same_sync_twice(
        self, spawn: Any, api: RunningService, sim: SimulatorServer
    ) -> None:
        first, second = spawn("a"), spawn("b")
        companies = sim.state.company_ids()
        run_ids = [install(api, company_id) for company_id in companies]
        for company_id in companies:  # a second round while the first may still run
            answer = api.admin.post(f"/admin/v1/installations/{company_id}/syncs")
            assert answer.status_code in (202, 409)
        for run_id in run_ids:
            assert api.wait_for_run(run_id)["status"] == "succeeded"
        more = [api.admin.post(f"/admin/v1/installations/{c}/syncs") for c in companies]
        for answer in more:
            if answer.status_code == 202:
                run = api.wait_for_run(answer.json()["run_id"])
                assert run["status"] == "succeeded", run["error"]
                run_ids.append(run["run_id"])

        executions = Counter(first.started_runs() + second.started_runs())
        assert set(run_ids) <= set(executions)
        assert all(count == 1 for count in executions.values()), executions
        assert first.started_runs() and second.started_runs()  # both took work
        for run_id in run_ids:
            assert api.admin.get(f"/admin/v1/syncs/{run_id}").json()["attempts"] == 1

    def test_a_killed_workers_run_is_finished_by_the_other(
        self, spawn: Any, api: RunningService, sim: SimulatorServer, database_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        doomed = spawn("doomed")
        sim.state.set_faults(latency_ms=250)
        run_id = install(api, company_id)
        wait_until(lambda: load_run(database_url, run_id).lease_owner == doomed.worker_id)
        time.sleep(1.0)  # some units checkpointed
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(10)
        killed_at = time.time()
        assert load_run(database_url, run_id).status == "running"

        survivor = spawn("survivor")
        run = api.wait_for_run(run_id, timeout=60)
        assert run["status"] == "succeeded", run["error"]
        assert run["attempts"] == 2
        assert survivor.started_runs() == [run_id]
        assert survivor.wait_for("resuming a run whose worker stopped heartbeating")
        sim.state.set_faults()

        # Resumed, not restarted: the survivor's part costs fewer requests than a whole run.
        full_started = time.time()
        again = api.admin.post(
            f"/admin/v1/installations/{company_id}/syncs", json={"full_refresh": True}
        )
        full = api.wait_for_run(again.json()["run_id"])
        assert full["status"] == "succeeded"
        survivor_part = [
            entry
            for entry in sim.state.request_log(path_prefix="/rest/")
            if killed_at < entry["time"] < full_started
        ]
        assert 0 < len(survivor_part) < full["requests"]


class TestSigterm:
    def test_running_sync_checkpoints_is_released_and_resumed_elsewhere(
        self, spawn: Any, api: RunningService, sim: SimulatorServer, database_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        leaving = spawn("leaving")
        sim.state.set_faults(latency_ms=250)
        run_id = install(api, company_id)
        wait_until(lambda: load_run(database_url, run_id).lease_owner == leaving.worker_id)
        time.sleep(1.0)

        leaving.process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal: the exit status says SIGTERM.
        assert leaving.process.wait(15) in (0, -signal.SIGTERM)
        leaving.wait_for("service stopped")
        leaving.wait_for("sync handed back to the queue; it resumes from its checkpoints")
        released = load_run(database_url, run_id)
        assert (released.status, released.lease_owner, released.attempts) == ("queued", None, 0)
        assert released.stats["requests"] > 0

        sim.state.set_faults()
        successor = spawn("successor")
        run = api.wait_for_run(run_id, timeout=60)
        assert run["status"] == "succeeded", run["error"]
        assert successor.started_runs() == [run_id]
        again = api.admin.post(
            f"/admin/v1/installations/{company_id}/syncs", json={"full_refresh": True}
        )
        full = api.wait_for_run(again.json()["run_id"])
        # The run's figures add up both attempts. Restarted, it would cost the first attempt
        # plus a whole run; resumed, it costs about one run (plus the page in flight). (A full
        # refresh of a synced company also reads the delete feeds a first sync skips, so it
        # is an upper bound of a whole first run.)
        assert released.stats["requests"] < run["requests"]
        assert run["requests"] < full["requests"] + released.stats["requests"]


class TestForegroundSync:
    def test_runs_one_sync_with_progress_and_exit_status(
        self, worker_env: dict[str, str], api: RunningService, sim: SimulatorServer
    ) -> None:
        env = worker_env
        company_id = sim.state.company_ids()[0]
        run_id = install(api, company_id)  # queued by the install; no worker is running
        command = [sys.executable, "-c", "from app.cli import main; main()", "sync"]
        done = subprocess.run(
            [*command, "--company-id", str(company_id)], env=env, capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert b"succeeded" in done.stderr and b"records" in done.stderr
        assert api.admin.get(f"/admin/v1/syncs/{run_id}").json()["status"] == "succeeded"

        unknown = subprocess.run(
            [*command, "--company-id", "999"], env=env, capture_output=True, timeout=60
        )
        assert unknown.returncode != 0 and b"999" in unknown.stderr

        sim.state.set_faults(error_rate=1.0, error_status=422, path_prefix="/rest/v1.0/projects")
        failed = subprocess.run(
            [*command, "--company-id", str(company_id)], env=env, capture_output=True, timeout=120
        )
        assert failed.returncode == 1, failed.stderr.decode()[-2000:]
