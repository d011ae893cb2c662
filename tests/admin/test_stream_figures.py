"""An installation's per-stream figures mean what their names say: rows in the destination,
records written by the last run, record writes ever."""

from __future__ import annotations

from typing import Any

import pytest

from procore_sim.server import SimulatorServer
from tests.factories import RunningService


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"streams": "projects,rfis"}


class TestStreamFigures:
    def test_updates_count_as_writes_not_as_rows(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        first = service.install_and_sync(company_id)
        project_id = sim.state.project_ids(company_id)[0]
        rfis = sim.state.records("rfis", company_id, project_id)
        for record in rfis[:3]:
            sim.state.update_record("rfis", record["id"], {"subject": "revised"})
        queued = service.admin.post(f"/admin/v1/installations/{company_id}/syncs").json()
        second = service.wait_for_run(queued["run_id"])
        assert second["status"] == "succeeded"

        state = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        stream = state["stream_state"]["rfis"]
        rows = sum(
            len(sim.state.records("rfis", company_id, p)) for p in sim.state.project_ids(company_id)
        )
        written_now = second["streams"]["rfis"]["records_written"]
        assert written_now >= 3
        assert stream["rows_in_destination"] == rows  # rows: unchanged by updates
        assert stream["records"] == rows  # SPEC section 4's name for the stream's records
        assert stream["records_written_last_run"] == written_now
        assert (
            stream["records_written_total"]
            == first["streams"]["rfis"]["records_written"] + written_now
        )
        assert stream["records_written_total"] > stream["rows_in_destination"]
        assert sum(u["rows_in_destination"] for u in stream["units"]) == rows

    def test_the_figures_are_documented_in_the_openapi_schema(
        self, service: RunningService
    ) -> None:
        schema = service.admin.get("/openapi.json").json()["components"]["schemas"]
        fields = schema["StreamStateView"]["properties"]
        for name in ("rows_in_destination", "records_written_total", "records_written_last_run"):
            assert fields[name].get("description"), name
        assert "stream_states" not in schema["InstallationDetail"]["properties"]
