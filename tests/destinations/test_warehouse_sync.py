"""The warehouse destination through the whole service: a sync lands typed tables in DuckDB,
purge empties them, a missing extra is a 400 naming it, and credentials stay secret."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from procore_sim.server import SimulatorServer
from tests.factories import RunningService, query_rows


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    """A few streams: each warehouse load costs about half a second."""
    return {"streams": "projects,users,rfis"}


def company(sim: SimulatorServer) -> int:
    return sim.state.company_ids()[0]


class TestSyncIntoDuckDB:
    def test_a_sync_lands_typed_tables_and_purge_removes_them(
        self, service: RunningService, sim: SimulatorServer, tmp_path: Path
    ) -> None:
        company_id = company(sim)
        service.install_and_sync(company_id)
        url = f"/admin/v1/installations/{company_id}"
        target = f"dlt+duckdb:///{tmp_path}/lake/w.duckdb"
        answer = service.admin.patch(url, json={"destination_url": target})
        assert answer.status_code == 200, answer.text
        run = service.admin.post(f"{url}/syncs", json={"full_refresh": True}).json()
        finished = service.wait_for_run(run["run_id"], timeout=180)
        assert finished["status"] == "succeeded", finished
        expected = {
            r["id"]
            for p in sim.state.project_ids(company_id)
            for r in sim.state.records("rfis", company_id, p)
        }
        with duckdb.connect(f"{tmp_path}/lake/w.duckdb") as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM procore.rfis").fetchall()]
            assert len(ids) == len(set(ids)) and set(ids) == expected
            types = dict(
                conn.execute(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = 'procore' AND table_name = 'rfis'"
                ).fetchall()
            )
            assert types["due_date"] == "DATE" and types["rfi_manager__id"] == "BIGINT"
            assert types["data"] == "JSON"
            [(children,)] = conn.execute(
                "SELECT COUNT(*) FROM procore.rfis__assignees a JOIN procore.rfis r "
                "ON a.company_id = r.company_id AND a._parent_id = r.id"
            ).fetchall()
            assert children >= len(expected)
        assert finished["streams"]["rfis"]["records_written"] >= len(expected)

        answer = service.admin.delete(url, params={"purge": "true"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["deleted_rows"]["rfis"] >= len(expected)
        with duckdb.connect(f"{tmp_path}/lake/w.duckdb") as conn:
            left = conn.execute(
                "SELECT COUNT(*) FROM procore.rfis WHERE company_id = ?", [company_id]
            ).fetchall()
            assert left == [(0,)]


class TestURLs:
    def test_a_missing_extra_is_a_400_naming_it(
        self,
        service: RunningService,
        sim: SimulatorServer,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        company_id = company(sim)
        service.install_and_sync(company_id)
        monkeypatch.setitem(sys.modules, "dlt", None)  # as if the extra were not installed
        answer = service.admin.patch(
            f"/admin/v1/installations/{company_id}",
            json={"destination_url": f"dlt+duckdb:///{tmp_path}/w.duckdb"},
        )
        assert answer.status_code == 400, answer.text
        message = answer.json()["error"]["message"]
        assert "pip install 'procore-dmsa-connector[warehouse]'" in message

    def test_credentials_are_encrypted_at_rest_and_redacted(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = company(sim)
        service.install_and_sync(company_id)
        url = f"/admin/v1/installations/{company_id}"
        secret = "Wh-Secr3t-Pa55"
        answer = service.admin.patch(
            url, json={"destination_url": f"dlt+postgres://etl:{secret}@db.example.com/wh"}
        )
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text
        shown = service.admin.get(url).json()["destination"]
        assert secret not in shown and "etl:***@" in shown
        stored = query_rows(service.settings.database_url, "SELECT * FROM stored_secrets")
        assert secret not in repr(stored)
