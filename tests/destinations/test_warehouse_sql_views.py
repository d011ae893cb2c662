"""Typed views for the SQL destination (`?typed_views=true`) on SQLite and PostgreSQL: the
stream's common fields as typed columns over `data`, and odd values read as NULL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.destinations import InvalidDestinationURL
from app.destinations.urls import SQLTarget, parse_destination_url, validate_destination_url
from tests.destinations.conftest import with_query
from tests.destinations.factories import make_destination, make_record

COMPANY = 4242
RUN = "run-1"


async def query(url: str, sql: str) -> list[dict[str, Any]]:
    target = parse_destination_url(url)
    assert isinstance(target, SQLTarget)
    engine = create_async_engine(target.url)
    try:
        async with engine.connect() as conn:
            schema = f'"{target.schema}".' if target.schema else ""
            result = await conn.execute(text(sql.replace("{schema}", schema)))
            return [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()


def as_utc(value: Any) -> Any:
    if isinstance(value, str):  # SQLite answers text
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC) if isinstance(value, datetime) else value


class TestTypedViews:
    async def test_common_fields_are_typed_columns(self, sql_url: str) -> None:
        url = with_query(sql_url, typed_views="true", table_prefix="p_")
        record = make_record(
            1,
            subject="Anchor bolts",
            status="open",
            due_date="2024-06-01",
            initiated_at="2024-05-01T09:30:00-02:00",
            private=True,
            rfi_manager={"id": 77, "name": "Sam"},
            cost_impact={"status": "tbd", "value": None},
        )
        odd = make_record(
            2,
            subject=12,  # not text
            due_date="2024-02-30",  # not a date
            rfi_manager={"id": "seventy"},  # not a number
            private="yes",  # not a boolean
        )
        async with make_destination(url) as destination:
            await destination.write("rfis", COMPANY, [record, odd], run_id=RUN)
        rows = await query(url, "SELECT * FROM {schema}p_rfis_typed ORDER BY id")
        first, second = rows
        assert first["company_id"] == COMPANY and first["project_id"] == 10
        assert first["subject"] == "Anchor bolts" and first["status"] == "open"
        assert str(first["due_date"]) == "2024-06-01"
        assert as_utc(first["initiated_at"]) == datetime(2024, 5, 1, 11, 30, tzinfo=UTC)
        assert first["private"] in (True, 1)
        assert first["rfi_manager_id"] == 77 and first["rfi_manager_name"] == "Sam"
        assert first["cost_impact_status"] == "tbd"
        assert as_utc(first["updated_at"]) == datetime(2024, 5, 1, 12, tzinfo=UTC)
        for column in ("subject", "rfi_manager_id", "private", "due_date"):
            assert second[column] is None, column
        if sql_url.startswith("postgresql"):
            [types] = await query(
                url,
                "SELECT pg_typeof(due_date)::text AS due, pg_typeof(rfi_manager_id)::text AS m, "
                "pg_typeof(initiated_at)::text AS i FROM {schema}p_rfis_typed LIMIT 1",
            )
            assert types == {"due": "date", "m": "bigint", "i": "timestamp with time zone"}
        assert isinstance(first["rfi_manager_id"], int)
        assert not isinstance(first["due_date"], Decimal)
        assert date.fromisoformat(str(first["due_date"])) == date(2024, 6, 1)

    async def test_a_stream_without_listed_fields_gets_the_contract_columns(
        self, sql_url: str
    ) -> None:
        url = with_query(sql_url, typed_views="true")
        async with make_destination(url) as destination:
            await destination.write("budget_views", COMPANY, [make_record(5)], run_id=RUN)
        [row] = await query(url, "SELECT * FROM {schema}budget_views_typed")
        assert set(row) == {
            "company_id",
            "id",
            "project_id",
            "updated_at",
            "deleted_at",
            "synced_at",
        }

    async def test_no_view_without_the_option(self, sql_url: str) -> None:
        async with make_destination(sql_url) as destination:
            await destination.write("rfis", COMPANY, [make_record(1)], run_id=RUN)
        with pytest.raises(Exception, match="rfis_typed"):
            await query(sql_url, "SELECT * FROM {schema}rfis_typed")

    def test_the_option_is_checked(self) -> None:
        assert "typed_views=true" in validate_destination_url("sqlite:///w.db?typed_views=true")
        with pytest.raises(InvalidDestinationURL, match="typed_views must be true or false"):
            validate_destination_url("sqlite:///w.db?typed_views=maybe")
