"""kill -9 during a warehouse load: no checkpoint runs ahead of what DuckDB holds, and the run
resumes in a new process to exactly the expected rows, without duplicates."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import httpx

from procore_sim.server import SimulatorServer
from tests.factories import ADMIN_TOKEN, install_event, query_rows, signed
from tests.sync.test_resume import ServiceProcess, service_env, slow_sim

__all__ = ["slow_sim"]


def loading(tmp: Path) -> bool:
    """True while a dlt load package sits in a service's working folder, being loaded."""
    return any(tmp.glob("connector-dlt-*/*/load/normalized/*"))


def landed(warehouse: Path) -> dict[int, int]:
    """Rows of rfis per project in the warehouse."""
    with duckdb.connect(str(warehouse)) as conn:
        if not conn.execute(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = 'procore' AND table_name = 'rfis'"
        ).fetchone()[0]:
            return {}
        rows = conn.execute("SELECT project_id, COUNT(*) FROM procore.rfis GROUP BY 1").fetchall()
        return {int(project): int(count) for project, count in rows}


class TestKillDuringLoad:
    def test_checkpoints_never_run_ahead_of_durable_loads(
        self, slow_sim: SimulatorServer, database_url: str, tmp_path: Path
    ) -> None:
        sim = slow_sim
        warehouse = tmp_path / "lake" / "w.duckdb"
        scratch = tmp_path / "tmp"
        scratch.mkdir()
        env = service_env(database_url, f"sqlite:///{tmp_path}/unused.db", sim)
        env.update(
            CONNECTOR_DESTINATION_URL=f"dlt+duckdb:///{warehouse}",
            CONNECTOR_DESTINATION_ROOT=str(tmp_path),
            CONNECTOR_PER_PAGE="20",
            CONNECTOR_PROJECT_CONCURRENCY="2",
            TMPDIR=str(scratch),
        )
        company_id = sim.state.company_ids()[0]
        first = ServiceProcess(env, tmp_path / "service.log")
        try:
            body, headers = signed(install_event(company_id))
            answer = httpx.post(
                f"{first.url}/callbacks/installations", content=body, headers=headers
            )
            assert answer.status_code == 202
            deadline = time.monotonic() + 60
            # Into the rfis stream, then the moment a load is under way.
            while len(sim.state.request_log(path_prefix="/rest/v1.0/projects/")) < 4:
                assert time.monotonic() < deadline, "the sync never reached rfis"
                time.sleep(0.01)
            while not loading(scratch):
                assert time.monotonic() < deadline, "no load was seen"
                time.sleep(0.002)
        finally:
            first.kill()

        saved = {
            int(project): int(records)
            for project, records in query_rows(
                database_url,
                "SELECT project_id, records FROM stream_states "
                "WHERE company_id = :c AND stream = 'rfis'",
                c=company_id,
            )
        }
        rows = landed(warehouse)
        expected = {
            r["id"]
            for p in sim.state.project_ids(company_id)
            for r in sim.state.records("rfis", company_id, p)
        }
        assert sum(rows.values()) < len(expected), "the kill landed after the rfis stream"
        # Every checkpoint describes rows the warehouse already holds.
        for project, records in saved.items():
            assert rows.get(project, 0) >= records, (project, records, rows)

        second = ServiceProcess(env, tmp_path / "service.log")
        try:
            admin = httpx.Client(
                base_url=second.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
            run_id = admin.get("/admin/v1/syncs", params={"company_id": company_id}).json()[0][
                "run_id"
            ]
            deadline = time.monotonic() + 120
            while (run := admin.get(f"/admin/v1/syncs/{run_id}").json())["status"] != "succeeded":
                assert run["status"] in ("running", "queued"), run
                assert time.monotonic() < deadline, "the killed run was not resumed"
                time.sleep(0.2)
        finally:
            second.stop()
        assert run["attempts"] == 2
        with duckdb.connect(str(warehouse)) as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM procore.rfis").fetchall()]
        assert len(ids) == len(set(ids)) and set(ids) == expected
