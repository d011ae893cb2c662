"""One bad record never blocks a batch: each destination stores what it can faithfully and
quarantines the rest (kept for an operator, with the reason), on SQLite, PostgreSQL, files
and HTTP; and a sync counts those records as `records_skipped` and carries on."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from app.destinations import DestinationRecord
from app.destinations.screening import MAX_NESTING
from procore_sim.server import SimulatorServer
from tests.destinations.factories import make_destination, make_record
from tests.destinations.receiver import Receiver
from tests.destinations.test_purge import read_table
from tests.destinations.test_sql import read_rows
from tests.factories import RunningService

COMPANY = 77
RUN = "run-1"


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"child": value}
    return value


def hostile_batch() -> list[DestinationRecord]:
    """Good records around one record of each kind that JSON or a column cannot carry."""
    return [
        make_record(1),
        make_record(2, title="nul \x00 inside"),
        make_record(3, title="lone \ud800 surrogate"),
        make_record(4, amount=float("inf")),
        make_record(5, amount=float("nan")),
        make_record(6, tree=nested(MAX_NESTING + 5)),
        make_record(7, **{"key \udc80": 1}),
        DestinationRecord(id=2**70, project_id=10, updated_at=None, deleted_at=None, data={}),
        make_record(8, big=2**70, tree=nested(20), title="Zoë"),
    ]


ALWAYS_QUARANTINED = {3, 4, 5, 6, 7}


def strict_json(text: str | bytes) -> Any:
    """Parses JSON as RFC 8259 has it: no NaN or Infinity."""

    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


class TestSQL:
    async def test_only_the_bad_records_are_quarantined(self, sql_url: str) -> None:
        postgres = sql_url.startswith("postgresql")
        async with make_destination(sql_url) as destination:
            result = await destination.write("rfis", COMPANY, hostile_batch(), run_id=RUN)

        expected = ALWAYS_QUARANTINED | {2**70} | ({2} if postgres else set())
        assert {item.id for item in result.quarantined} == expected
        assert result.written == 9 - len(expected)
        reasons = {item.id: item.reason for item in result.quarantined}
        assert "lone surrogate" in reasons[3]
        assert "NaN or beyond" in reasons[4]
        assert "nested deeper than" in reasons[6]
        assert "64-bit" in reasons[2**70]
        rows = {row["id"]: row for row in await read_rows(sql_url, "rfis")}
        assert set(rows) == {1, 8} | (set() if postgres else {2})
        assert rows[8]["data"]["big"] == 2**70  # a big number inside the data is kept exactly
        if not postgres:
            assert rows[2]["data"]["title"] == "nul \x00 inside"  # SQLite keeps U+0000
        else:
            assert "U+0000" in reasons[2]

        held = {row["record_id"]: row for row in await read_table(sql_url, "connector_quarantine")}
        assert set(held) == {str(i) for i in expected}
        kept = json.loads(held["3"]["record"])  # ASCII JSON, readable by any client
        assert kept["title"] == "lone \ud800 surrogate"
        assert json.loads(held["4"]["record"])["amount"] == "Infinity"
        assert held["4"]["reason"] == reasons[4] and held["4"]["run_id"] == RUN

    async def test_a_record_that_lands_later_leaves_the_quarantine(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, [make_record(4, x=math.inf)], run_id=RUN)
            assert len(await read_table(sql_url, "connector_quarantine")) == 1
        async with make_destination(sql_url) as destination:
            result = await destination.write("rfis", COMPANY, [make_record(4, x=1.5)], run_id=RUN)
        assert result.written == 1 and result.quarantined == ()
        assert await read_table(sql_url, "connector_quarantine") == []


class TestFiles:
    @pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
    async def test_files_hold_only_valid_json(self, tmp_path: Path, file_format: str) -> None:
        url = f"file://{tmp_path}/out?format={file_format}"
        async with make_destination(url) as destination:
            result = await destination.write("rfis", COMPANY, hostile_batch(), run_id=RUN)
            await destination.finish_run(RUN, succeeded=True)

        big_id = {2**70} if file_format == "parquet" else set()
        assert {item.id for item in result.quarantined} == ALWAYS_QUARANTINED | big_id
        company = tmp_path / "out" / str(COMPANY)
        if file_format == "jsonl":
            [data_file] = (company / "rfis").iterdir()
            lines = [strict_json(line) for line in data_file.read_text("utf-8").splitlines()]
            assert {line["id"] for line in lines} == {1, 2, 8, 2**70}
            assert next(line for line in lines if line["id"] == 2)["data"]["title"] == (
                "nul \x00 inside"
            )
        [held_file] = (company / "_quarantine" / "rfis").iterdir()
        held = [strict_json(line) for line in held_file.read_text("utf-8").splitlines()]
        assert {line["id"] for line in held} == ALWAYS_QUARANTINED | big_id
        assert all(line["reason"] and line["run_id"] == RUN for line in held)
        assert all(strict_json(line["record"]) is not None for line in held)
        manifest = strict_json((company / "_runs" / f"{RUN}.json").read_text())
        assert set(manifest["streams"]) == {"rfis"}


class TestHTTP:
    async def test_bodies_are_valid_json_and_quarantine_goes_in_its_own_message(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        async with make_destination(receiver.url, signing_secret=signing_secret) as destination:
            result = await destination.write("rfis", COMPANY, hostile_batch(), run_id=RUN)

        assert {item.id for item in result.quarantined} == ALWAYS_QUARANTINED
        batch, held = (strict_json(delivery.body) for delivery in receiver.deliveries)
        assert all(delivery.signature_error is None for delivery in receiver.deliveries)
        assert batch["type"] == "records.batch"
        assert {line["id"] for line in batch["records"]} == {1, 2, 8, 2**70}
        assert held["type"] == "records.quarantined"
        assert {line["id"] for line in held["records"]} == ALWAYS_QUARANTINED
        assert json.loads(held["records"][0]["record"])


class TestSync:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"streams": "projects,rfis"}

    def test_bad_records_are_skipped_and_the_stream_goes_on(
        self, service: RunningService, sim: SimulatorServer, sql_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        path = f"/admin/v1/installations/{company_id}"
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        assert service.admin.patch(path, json={"destination_url": sql_url}).status_code == 200
        project = sim.state.project_ids(company_id)[0]
        rfis = sim.state.records("rfis", company_id, project)
        bad = {
            rfis[0]["id"]: {"title": "nul \x00 inside"},
            rfis[1]["id"]: {"title": "lone \ud800"},
            rfis[2]["id"]: {"cost": float("inf")},
        }
        for record_id, fields in bad.items():
            sim.state.update_record("rfis", record_id, fields)

        run = service.admin.post(f"{path}/syncs", json={"full_refresh": True}).json()
        run = service.wait_for_run(run["run_id"])
        assert run["status"] == "succeeded", run["error"]
        stats = run["streams"]["rfis"]
        skipped = {item["id"] for item in stats["quarantined"]}
        postgres = sql_url.startswith("postgresql")
        expected = set(bad) if postgres else set(bad) - {rfis[0]["id"]}
        assert skipped == expected
        assert stats["records_skipped"] == len(expected)
        all_ids = {
            r["id"]
            for p in sim.state.project_ids(company_id)
            for r in sim.state.records("rfis", company_id, p)
        }
        assert stats["records_written"] == len(all_ids) - len(expected)
