"""Instant resume: a process restarted after a crash resumes the runs its previous incarnation
held at once; a lease held on another host is still left to expire."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.database import unit_of_work
from app.runs import leases, queue
from app.runs.owners import Owner, WorkerIdentity, pid_alive
from app.runtime import Runtime
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import ADMIN_TOKEN, execute, install_event, query_rows, signed, wait_until
from tests.sync.test_resume import ServiceProcess, service_env

LONG_LEASE = 600  # far beyond any test's patience: only an instant resume finishes in time


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(10)
    return child.pid


def foreign(identity: WorkerIdentity, *, pid: int) -> str:
    """A lease owner on another host (another pid space) with the given pid."""
    return str(Owner("elsewhere", "0123456789ab", pid, "f0f0f0f0f0f0"))


class TestOwners:
    def test_a_dead_process_on_this_host_is_dead(self) -> None:
        me = WorkerIdentity.create()
        owner = Owner(me.owner.host, me.owner.scope, dead_pid(), "aaaaaaaaaaaa")
        assert me.is_dead(str(owner))

    def test_a_live_process_this_process_and_an_old_owner_are_not(self) -> None:
        me = WorkerIdentity.create()
        scope = me.owner.scope
        parent = Owner(me.owner.host, scope, 1, "bbbbbbbbbbbb")  # init: alive
        sibling = Owner(me.owner.host, scope, me.owner.pid, "cccccccccccc")  # another runtime
        assert not me.is_dead(str(parent))
        assert not me.is_dead(str(sibling))
        assert not me.is_dead(str(me))
        assert not me.is_dead("host-1a2b3c4d")  # written before owners had a pid
        assert not me.is_dead(None)

    def test_another_host_is_never_judged_by_its_pid(self) -> None:
        me = WorkerIdentity.create()
        assert not me.is_dead(foreign(me, pid=dead_pid()))

    def test_a_zombie_is_dead(self) -> None:
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        wait_until(lambda: Path(f"/proc/{child.pid}/stat").read_text().split(")")[-1][1] == "Z")
        try:
            assert not pid_alive(child.pid)
        finally:
            child.wait(10)

    def test_the_sqlite_lock_file_proves_death_across_pid_spaces(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'connector.db'}"
        me, holder = WorkerIdentity.create(), WorkerIdentity.create()
        me.hold_lock(url)
        holder.hold_lock(url)
        # The holder as seen from another container: a foreign pid space, its own nonce.
        seen = str(Owner("elsewhere", "0123456789ab", 1, holder.owner.nonce))
        assert not me.is_dead(seen)  # its lock is held: alive
        assert holder._lock is not None
        holder._lock.close()  # what the kernel does when the process dies
        assert me.is_dead(seen)
        assert me.prune() == 1
        assert not me.is_dead(seen)  # no file left: nothing can be proven any more
        assert [p.name for p in (tmp_path / "connector.db.workers").iterdir()] == [
            f"{me.owner.nonce}.lock"
        ]


class TestEndDeadLeases:
    async def test_only_a_provably_dead_holders_run_becomes_claimable(self, rt: Runtime) -> None:
        me = rt.identity
        dead_here = str(Owner(me.owner.host, me.owner.scope, dead_pid(), "dddddddddddd"))
        elsewhere = foreign(me, pid=dead_pid())
        runs = {}
        for company_id, owner in ((1, dead_here), (2, elsewhere), (3, rt.worker_id)):
            async with unit_of_work(rt.sessions) as session:
                run, _ = await queue.enqueue(session, company_id, trigger="test")
                claimed = await leases.claim(session, owner, LONG_LEASE, run_id=run.id)
                assert claimed is not None
                runs[owner] = run.id
        async with unit_of_work(rt.sessions) as session:
            ended = await leases.end_dead_leases(session, me.is_dead)
        assert ended == [(runs[dead_here], dead_here)]
        async with unit_of_work(rt.sessions) as session:
            claimed = await leases.claim(session, rt.worker_id, 30)
            again = await leases.claim(session, rt.worker_id, 30)
        assert claimed is not None and claimed.run.id == runs[dead_here]
        assert claimed.recovered and claimed.run.attempts == 2
        assert again is None  # the other host's run and our own stay where they are


@pytest.fixture
def two_company_sim() -> Any:
    config = SimulatorConfig(companies=2, projects=3, records=60, seed=11)
    with SimulatorServer(config, host="127.0.0.1", port=0) as server:
        server.state.set_faults(latency_ms=60)
        yield server


def start_sync(service: ServiceProcess, sim: SimulatorServer, company_id: int) -> None:
    body, headers = signed(install_event(company_id))
    answer = httpx.post(f"{service.url}/callbacks/installations", content=body, headers=headers)
    assert answer.status_code == 202


def run_of(database_url: str, company_id: int) -> dict[str, Any]:
    rows = query_rows(
        database_url,
        "SELECT id, status, attempts, lease_owner, lease_expires_at, finished_at "
        "FROM sync_runs WHERE company_id = :c ORDER BY queued_at DESC",
        c=company_id,
    )
    keys = ("id", "status", "attempts", "lease_owner", "lease_expires_at", "finished_at")
    return dict(zip(keys, rows[0], strict=True)) if rows else {}


def as_utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def kill_mid_run(env: dict[str, str], sim: SimulatorServer, log: Path, company_id: int) -> None:
    """Starts the service, installs the company and SIGKILLs the process mid-sync."""
    first = ServiceProcess(env, log)
    try:
        start_sync(first, sim, company_id)
        wait_until(
            lambda: len(sim.state.request_log(path_prefix="/rest/v1.0/projects/")) >= 15,
            timeout=30,
            message="the sync got going",
        )
    finally:
        first.kill()


class TestRestartAfterSigkill:
    def test_the_restarted_process_resumes_its_run_without_waiting_for_the_lease(
        self,
        two_company_sim: SimulatorServer,
        database_url: str,
        destination_url: str,
        tmp_path: Path,
    ) -> None:
        sim = two_company_sim
        env = service_env(database_url, destination_url, sim)
        env["CONNECTOR_LEASE_SECONDS"] = str(LONG_LEASE)
        company_id = sim.state.company_ids()[0]
        kill_mid_run(env, sim, tmp_path / "service.log", company_id)
        killed = run_of(database_url, company_id)
        assert killed["status"] == "running" and killed["attempts"] == 1
        assert as_utc(killed["lease_expires_at"]) > datetime.now(UTC) + timedelta(minutes=5)

        restarted_at = time.monotonic()
        second = ServiceProcess(env, tmp_path / "service.log")
        try:
            wait_until(
                lambda: run_of(database_url, company_id)["lease_owner"] != killed["lease_owner"],
                timeout=60,
                message="the run was taken over",
            )
            resumed_in = time.monotonic() - restarted_at
            admin = httpx.Client(
                base_url=second.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            wait_until(
                lambda: (
                    admin.get(f"/admin/v1/syncs/{killed['id']}").json()["status"] == "succeeded"
                ),
                timeout=60,
                message="the resumed run succeeded",
            )
        finally:
            second.stop()
        done = run_of(database_url, company_id)
        assert done["attempts"] == 2
        assert "resuming it without waiting for its lease" in (tmp_path / "service.log").read_text()
        print(f"resumed {resumed_in:.1f} s after the restart began (lease {LONG_LEASE} s)")

    def test_a_run_held_on_another_host_waits_for_its_lease(
        self,
        two_company_sim: SimulatorServer,
        database_url: str,
        destination_url: str,
        tmp_path: Path,
    ) -> None:
        sim = two_company_sim
        env = service_env(database_url, destination_url, sim)
        env["CONNECTOR_LEASE_SECONDS"] = str(LONG_LEASE)
        company_id, other_company = sim.state.company_ids()[:2]
        kill_mid_run(env, sim, tmp_path / "service.log", company_id)
        # As if a worker on another host held it: another pid space, a lease still running.
        expires = datetime.now(UTC) + timedelta(seconds=40)
        elsewhere = str(Owner("elsewhere", "0123456789ab", 4242, "f0f0f0f0f0f0"))
        execute(
            database_url,
            "UPDATE sync_runs SET lease_owner = :o, lease_expires_at = :e WHERE company_id = :c",
            o=elsewhere,
            e=expires.replace(tzinfo=None) if database_url.startswith("sqlite") else expires,
            c=company_id,
        )

        second = ServiceProcess(env, tmp_path / "service.log")
        try:
            # Another company's run is claimed and done: the restarted worker has polled.
            start_sync(second, sim, other_company)
            wait_until(
                lambda: run_of(database_url, other_company).get("status") == "succeeded",
                timeout=60,
                message="the other company's run succeeded",
            )
            waiting = run_of(database_url, company_id)
            assert datetime.now(UTC) < expires, "too slow a machine to tell: the lease ran out"
            assert waiting["lease_owner"] == elsewhere and waiting["attempts"] == 1
            wait_until(
                lambda: run_of(database_url, company_id)["status"] == "succeeded",
                timeout=90,
                message="the run resumed after its lease",
            )
        finally:
            second.stop()
        done = run_of(database_url, company_id)
        assert done["attempts"] == 2
        assert as_utc(done["finished_at"]) >= expires
