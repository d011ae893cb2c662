"""SQL destination against SQLite and (in CI) PostgreSQL, read back through plain SQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.destinations import (
    DestinationError,
    DestinationRecord,
)
from app.destinations.sql import SQLDestination
from app.destinations.urls import SQLTarget, parse_destination_url
from tests.destinations.conftest import with_query
from tests.destinations.factories import BASE_TIME, make_batch, make_destination, make_record

COMPANY = 4242
RUN = "run-1"


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def read_rows(url: str, table_name: str) -> list[dict[str, Any]]:
    """Returns the table's rows as dicts (timestamps as aware UTC), ordered by key."""
    target = parse_destination_url(url)
    assert isinstance(target, SQLTarget)
    engine = create_async_engine(target.url)
    try:
        async with engine.connect() as conn:
            table = await conn.run_sync(
                lambda sync: Table(table_name, MetaData(schema=target.schema), autoload_with=sync)
            )
            result = await conn.execute(table.select().order_by(table.c.company_id, table.c.id))
            rows = [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()
    for row in rows:
        for column in ("updated_at", "deleted_at", "synced_at"):
            row[column] = _as_utc(row[column])
    return rows


async def describe_table(url: str, table_name: str) -> tuple[dict[str, Any], list[str]]:
    """Returns the table's column types by name and its primary key columns."""
    target = parse_destination_url(url)
    assert isinstance(target, SQLTarget)
    engine = create_async_engine(target.url)
    try:
        async with engine.connect() as conn:

            def inspect_table(sync: Any) -> tuple[dict[str, Any], list[str]]:
                inspector = inspect(sync)
                columns = {
                    column["name"]: column["type"]
                    for column in inspector.get_columns(table_name, target.schema)
                }
                primary_key = inspector.get_pk_constraint(table_name, target.schema)
                return columns, primary_key["constrained_columns"]

            return await conn.run_sync(inspect_table)
    finally:
        await engine.dispose()


class TestSQLDestination:
    async def test_creates_table_following_the_contract(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, [make_record(1)], run_id=RUN)

        columns, primary_key = await describe_table(sql_url, "rfis")
        assert set(columns) == {
            "company_id",
            "id",
            "project_id",
            "updated_at",
            "deleted_at",
            "synced_at",
            "data",
        }
        assert primary_key == ["company_id", "id"]
        for name in ("company_id", "id", "project_id"):
            assert str(columns[name]).upper() == "BIGINT"
        if sql_url.startswith("postgresql"):
            for name in ("updated_at", "deleted_at", "synced_at"):
                assert columns[name].timezone is True
            assert str(columns["data"]).upper() == "JSONB"

    async def test_stores_the_record_exactly(self, sql_url: str) -> None:
        record = make_record(1, project_id=None, nested={"a": [1, 2.5, None, True]})
        async with make_destination(sql_url) as destination:
            before = datetime.now(UTC)
            await destination.write("rfis", COMPANY, [record], run_id=RUN)

        [row] = await read_rows(sql_url, "rfis")
        assert row["company_id"] == COMPANY
        assert row["id"] == 1
        assert row["project_id"] is None
        assert row["updated_at"] == BASE_TIME
        assert row["deleted_at"] is None
        assert row["synced_at"] >= before - timedelta(seconds=1)
        assert row["data"] == record.data

    async def test_writing_the_same_batch_twice_leaves_one_row_each(self, sql_url: str) -> None:
        batch = make_batch(25)
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, batch, run_id=RUN)
            await destination.write("rfis", COMPANY, batch, run_id=RUN)

        rows = await read_rows(sql_url, "rfis")
        assert [row["id"] for row in rows] == list(range(1, 26))

    async def test_a_changed_record_updates_its_row(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, make_batch(3), run_id=RUN)
            changed = make_record(2, title="changed", minutes=5, project_id=11)
            await destination.write("rfis", COMPANY, [changed], run_id="run-2")

        rows = {row["id"]: row for row in await read_rows(sql_url, "rfis")}
        assert len(rows) == 3
        assert rows[2]["data"]["title"] == "changed"
        assert rows[2]["project_id"] == 11
        assert rows[2]["updated_at"] == BASE_TIME + timedelta(minutes=5)
        assert rows[1]["data"]["title"] == "original"

    async def test_duplicate_ids_in_one_batch_keep_the_last(self, sql_url: str) -> None:
        batch = [make_record(1, title="first"), make_record(1, title="second", minutes=1)]
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, batch, run_id=RUN)

        [row] = await read_rows(sql_url, "rfis")
        assert row["data"]["title"] == "second"

    async def test_companies_do_not_share_rows(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", 1, [make_record(5, title="one")], run_id=RUN)
            await destination.write("rfis", 2, [make_record(5, title="two")], run_id=RUN)

        rows = await read_rows(sql_url, "rfis")
        assert [(row["company_id"], row["data"]["title"]) for row in rows] == [
            (1, "one"),
            (2, "two"),
        ]

    async def test_mark_deleted_sets_deleted_at_once(self, sql_url: str) -> None:
        deleted_at = BASE_TIME + timedelta(hours=1)
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, make_batch(4), run_id=RUN)
            marked = await destination.mark_deleted(
                "rfis", COMPANY, [2, 3, 3, 99], deleted_at, run_id=RUN
            )
            marked_again = await destination.mark_deleted(
                "rfis", COMPANY, [2], deleted_at + timedelta(hours=1), run_id=RUN
            )
            other_company = await destination.mark_deleted(
                "rfis", COMPANY + 1, [1], deleted_at, run_id=RUN
            )

        assert (marked, marked_again, other_company) == (2, 0, 0)
        rows = {row["id"]: row for row in await read_rows(sql_url, "rfis")}
        assert rows[2]["deleted_at"] == deleted_at
        assert rows[3]["deleted_at"] == deleted_at
        assert rows[1]["deleted_at"] is None
        assert rows[4]["deleted_at"] is None
        assert rows[2]["data"]["title"] == "original"

    async def test_a_record_that_comes_back_clears_deleted_at(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, [make_record(1)], run_id=RUN)
            await destination.mark_deleted("rfis", COMPANY, [1], BASE_TIME, run_id=RUN)
            await destination.write("rfis", COMPANY, [make_record(1, minutes=9)], run_id="run-2")

        [row] = await read_rows(sql_url, "rfis")
        assert row["deleted_at"] is None

    async def test_a_record_deleted_in_procore_is_stored_with_deleted_at(
        self, sql_url: str
    ) -> None:
        gone = BASE_TIME + timedelta(days=1)
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, [make_record(1, deleted_at=gone)], run_id=RUN)

        [row] = await read_rows(sql_url, "rfis")
        assert row["deleted_at"] == gone

    async def test_timestamps_are_stored_in_utc(self, sql_url: str) -> None:
        plus_two = timezone(timedelta(hours=2))
        local = datetime(2024, 5, 1, 14, 0, tzinfo=plus_two)
        record = DestinationRecord(
            id=1, project_id=None, updated_at=local, deleted_at=None, data={}
        )
        async with make_destination(sql_url) as destination:
            await destination.write("users", COMPANY, [record], run_id=RUN)

        [row] = await read_rows(sql_url, "users")
        assert row["updated_at"] == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    async def test_each_stream_gets_its_own_table(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, make_batch(2), run_id=RUN)
            await destination.write("submittals", COMPANY, make_batch(3), run_id=RUN)
            await destination.write("punch_items", COMPANY, [], run_id=RUN)

        assert len(await read_rows(sql_url, "rfis")) == 2
        assert len(await read_rows(sql_url, "submittals")) == 3
        assert await read_rows(sql_url, "punch_items") == []

    async def test_batches_larger_than_a_chunk_are_written_whole(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            assert isinstance(destination, SQLDestination)
            await destination.write("rfis", COMPANY, make_batch(2500), run_id=RUN)
            marked = await destination.mark_deleted(
                "rfis", COMPANY, list(range(1, 2501)), BASE_TIME, run_id=RUN
            )

        assert marked == 2500
        assert len(await read_rows(sql_url, "rfis")) == 2500

    async def test_concurrent_writes_all_land(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            await asyncio.gather(
                *(
                    destination.write(stream, COMPANY, make_batch(200, start=start), run_id=RUN)
                    for stream in ("rfis", "submittals")
                    for start in (1, 201, 401)
                )
            )

        assert len(await read_rows(sql_url, "rfis")) == 600
        assert len(await read_rows(sql_url, "submittals")) == 600

    async def test_table_prefix_from_the_url(self, sql_url: str) -> None:
        url = with_query(sql_url, table_prefix="procore_")
        async with make_destination(url, table_prefix="ignored_") as destination:
            await destination.write("rfis", COMPANY, [make_record(1)], run_id=RUN)
            assert "table prefix 'procore_'" in destination.describe()

        assert len(await read_rows(sql_url, "procore_rfis")) == 1

    async def test_table_prefix_from_the_argument(self, sql_url: str) -> None:
        async with make_destination(sql_url, table_prefix="pc_") as destination:
            await destination.write("rfis", COMPANY, [make_record(1)], run_id=RUN)

        assert len(await read_rows(sql_url, "pc_rfis")) == 1

    async def test_refuses_a_foreign_table_with_the_same_name(self, sql_url: str) -> None:
        target = parse_destination_url(sql_url)
        assert isinstance(target, SQLTarget)
        async with make_destination(sql_url) as destination:
            # open() made the SQLite file or PostgreSQL schema; now someone else's table.
            engine = create_async_engine(target.url)
            qualified = f'"{target.schema}".rfis' if target.schema else "rfis"
            async with engine.begin() as conn:
                await conn.execute(text(f"CREATE TABLE {qualified} (id BIGINT PRIMARY KEY)"))
            await engine.dispose()

            with pytest.raises(DestinationError, match="lacks the connector's columns"):
                await destination.write("rfis", COMPANY, [make_record(1)], run_id=RUN)

    async def test_reopening_uses_the_existing_tables(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, make_batch(2), run_id=RUN)
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, make_batch(2, start=3), run_id="run-2")

        assert len(await read_rows(sql_url, "rfis")) == 4

    async def test_rejects_unsafe_stream_names(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            with pytest.raises(ValueError, match="stream name"):
                await destination.write('rfis"; drop', COMPANY, [make_record(1)], run_id=RUN)


class TestSQLiteSpecifics:
    async def test_creates_the_parent_directory_and_uses_wal(self, tmp_path: Any) -> None:
        path = tmp_path / "a" / "b" / "out.db"
        async with make_destination(f"sqlite:///{path}") as destination:
            await destination.write("rfis", COMPANY, [make_record(1)], run_id=RUN)

        assert path.exists()
        engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        await engine.dispose()
        assert mode == "wal"

    async def test_describe_names_the_file(self, tmp_path: Any) -> None:
        destination = make_destination(f"sqlite:///{tmp_path}/x.db")
        assert destination.describe() == f"SQL tables in sqlite:///{tmp_path}/x.db"

    async def test_write_before_open_fails_clearly(self, tmp_path: Any) -> None:
        destination = make_destination(f"sqlite:///{tmp_path}/x.db")
        with pytest.raises(DestinationError, match="not open"):
            await destination.write("rfis", COMPANY, [make_record(1)], run_id=RUN)


class TestPostgresDescribe:
    def test_describe_redacts_the_password(self) -> None:
        destination = make_destination("postgresql://etl:hunter2@db.internal:5432/wh?schema=raw")
        description = destination.describe()
        assert "hunter2" not in description
        assert "etl:***@db.internal" in description
        assert "schema 'raw'" in description
