"""Purging one company: from each kind of destination, and through the admin API from every
destination the installation wrote to and no other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.destinations import DestinationRecord
from procore_sim.server import SimulatorServer
from tests.destinations.conftest import with_query
from tests.destinations.factories import BASE_TIME, make_destination, make_record
from tests.destinations.receiver import Receiver
from tests.destinations.test_sql import read_rows
from tests.factories import RunningService, execute, query_rows

RUN = "run-1"
STREAMS = ("rfis", "users")


class TestPurge:
    async def test_sql_deletes_only_that_companys_rows(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            for company in (1, 2):
                await destination.write(
                    "rfis", company, [make_record(10), make_record(11)], run_id=RUN
                )
                await destination.write("users", company, [make_record(20)], run_id=RUN)
            deleted = await destination.purge(1, STREAMS)
        assert deleted == {"rfis": 2, "users": 1}
        assert {row["company_id"] for row in await read_rows(sql_url, "rfis")} == {2}

    async def test_sql_never_touches_another_prefixs_tables(self, sql_url: str) -> None:
        async with make_destination(with_query(sql_url, table_prefix="b_")) as prefixed:
            await prefixed.write("rfis", 1, [make_record(10)], run_id=RUN)
        async with make_destination(sql_url) as plain:
            await plain.write("rfis", 1, [make_record(11)], run_id=RUN)
            assert await plain.purge(1, STREAMS) == {"rfis": 1}
        assert [row["id"] for row in await read_rows(sql_url, "b_rfis")] == [10]
        async with make_destination(with_query(sql_url, table_prefix="b_")) as prefixed:
            assert await prefixed.purge(1, STREAMS) == {"rfis": 1}
        assert await read_rows(sql_url, "b_rfis") == []

    async def test_sql_purges_the_companys_quarantined_records(self, sql_url: str) -> None:
        bad = DestinationRecord(id=2**70, project_id=1, updated_at=None, deleted_at=None, data={})
        async with make_destination(sql_url) as destination:
            for company in (1, 2):
                result = await destination.write("rfis", company, [bad], run_id=RUN)
                assert len(result.quarantined) == 1
            await destination.purge(1, STREAMS)
        held = await read_table(sql_url, "connector_quarantine")
        assert [row["company_id"] for row in held] == [2]

    async def test_files_remove_the_company_folder_and_count_rows(self, tmp_path: Path) -> None:
        async with make_destination(f"file://{tmp_path}") as destination:
            for company in (1, 2):
                await destination.write("rfis", company, [make_record(10)], run_id=RUN)
            await destination.write("rfis", 1, [make_record(11), make_record(12)], run_id=RUN)
            await destination.mark_deleted("rfis", 1, [10], BASE_TIME, run_id=RUN)
            await destination.finish_run(RUN, succeeded=True)
            # Three files of rfis, holding four rows: rows are what is reported.
            assert await destination.purge(1, STREAMS) == {"rfis": 4}
        assert not (tmp_path / "1").exists() and (tmp_path / "2" / "rfis").is_dir()

    async def test_http_sends_a_signed_purge_with_a_fresh_id_each_time(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        async with make_destination(receiver.url, signing_secret=signing_secret) as destination:
            assert await destination.purge(7, STREAMS) == {}
            assert await destination.purge(7, STREAMS) == {}
        first, second = receiver.deliveries
        assert first.signature_error is None and second.signature_error is None
        assert json.loads(first.body)["type"] == "company.purge"
        assert first.payload["company_id"] == 7
        # A receiver that drops repeated webhook-ids (as advised) must still see the second.
        assert first.headers["webhook-id"] != second.headers["webhook-id"]


async def read_table(url: str, name: str) -> list[dict[str, Any]]:
    """Returns every row of a table that is not a stream table."""
    from sqlalchemy import MetaData, Table
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.destinations.urls import SQLTarget, parse_destination_url

    target = parse_destination_url(url)
    assert isinstance(target, SQLTarget)
    engine = create_async_engine(target.url)
    try:
        async with engine.connect() as conn:
            table = await conn.run_sync(
                lambda sync: Table(name, MetaData(schema=target.schema), autoload_with=sync)
            )
            return [dict(row._mapping) for row in await conn.execute(table.select())]
    finally:
        await engine.dispose()


def count_rows(url: str, company_id: int) -> int:
    """Rows of one company in a SQLite destination's rfis table."""
    sql = "SELECT count(*) FROM rfis WHERE company_id = :c"
    return int(query_rows(url, sql, c=company_id)[0][0])


class TestAdminPurge:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"streams": "projects,rfis"}

    def test_reaches_every_destination_written_and_never_the_default(
        self, service: RunningService, sim: SimulatorServer, destination_url: str, tmp_path: Path
    ) -> None:
        moved, stayed = sim.state.company_ids()
        assert service.install_and_sync(moved)["status"] == "succeeded"
        assert service.install_and_sync(stayed)["status"] == "succeeded"
        second = f"sqlite:///{tmp_path / 'second.db'}"
        path = f"/admin/v1/installations/{moved}"
        assert service.admin.patch(path, json={"destination_url": second}).status_code == 200
        run = service.admin.post(f"{path}/syncs", json={"full_refresh": True}).json()
        assert service.wait_for_run(run["run_id"])["status"] == "succeeded"
        before = count_rows(destination_url, moved)
        assert before > 0 and count_rows(second, moved) > 0

        answer = service.admin.delete(path, params={"purge": "true"})
        assert answer.status_code == 200, answer.text
        # Both the earlier default destination and the current one, rows summed per stream.
        assert answer.json()["deleted_rows"]["rfis"] == before * 2
        assert count_rows(destination_url, moved) == 0 and count_rows(second, moved) == 0
        assert count_rows(destination_url, stayed) > 0

        # Rows of that company written later by someone else into the default destination:
        # this installation no longer uses it, so a second purge must leave them.
        execute(
            destination_url,
            "INSERT INTO rfis (company_id, id, synced_at, data) VALUES (:c, 1, '2024-01-01', '{}')",
            c=moved,
        )
        again = service.admin.delete(path, params={"purge": "true"})
        assert again.status_code == 200, again.text
        assert again.json()["deleted_rows"] == {}
        assert count_rows(destination_url, moved) == 1

    def test_a_destination_the_policy_now_refuses_is_a_409_not_a_500(
        self, service: RunningService, sim: SimulatorServer, receiver: Receiver
    ) -> None:
        company_id = sim.state.company_ids()[0]
        path = f"/admin/v1/installations/{company_id}"
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        patched = service.admin.patch(path, json={"destination_url": receiver.url})
        receiver.secret = patched.json()["signing_secret"]
        run = service.admin.post(f"{path}/syncs").json()
        assert service.wait_for_run(run["run_id"])["status"] == "succeeded"
        # The operator withdraws loopback from the allowed networks.
        service.settings.destination_allowed_networks = []
        answer = service.admin.delete(path, params={"purge": "true"})
        assert answer.status_code == 409, answer.text
        assert "loopback" in answer.json()["error"]["message"]
