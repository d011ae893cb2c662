"""Warehouse destination through dlt into DuckDB: typed tables, child tables, merge on the key,
schema evolution, deletes, purge, quarantine and grouped loads."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from app.destinations import DestinationError, DestinationRecord, InvalidDestinationURL
from app.destinations.policy import DestinationPolicy
from app.destinations.warehouse.destination import WarehouseDestination
from tests.destinations.factories import BASE_TIME, make_batch, make_destination, make_record

COMPANY = 4242
RUN = "run-1"


def duckdb_url(tmp_path: Path, **query: str) -> str:
    url = f"dlt+duckdb:///{tmp_path}/lake/warehouse.duckdb"
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def rows(tmp_path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with duckdb.connect(f"{tmp_path}/lake/warehouse.duckdb") as conn:
        return conn.execute(sql, list(params)).fetchall()


def columns(tmp_path: Path, table: str, schema: str = "procore") -> dict[str, str]:
    found = rows(
        tmp_path,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ?",
        schema,
        table,
    )
    return dict(found)  # type: ignore[arg-type]


class TestTypedTables:
    async def test_contract_columns_typed_fields_and_json_data(self, tmp_path: Path) -> None:
        batch = [
            make_record(
                1,
                due_date="2024-06-01",
                closed_at="2024-05-03T10:00:00Z",
                cost=12.5,
                private=False,
                count=3,
                big=2**70,
            )
        ]
        async with make_destination(duckdb_url(tmp_path)) as destination:
            result = await destination.write("rfis", COMPANY, batch, run_id=RUN)
        assert result.written == 1 and not result.quarantined
        types = columns(tmp_path, "rfis")
        assert types["company_id"] == "BIGINT" and types["id"] == "BIGINT"
        assert types["project_id"] == "BIGINT"
        for name in ("updated_at", "deleted_at", "synced_at", "closed_at"):
            assert types[name] == "TIMESTAMP WITH TIME ZONE", name
        assert types["data"] == "JSON"
        assert types["due_date"] == "DATE"
        assert types["cost"] == "DOUBLE" and types["private"] == "BOOLEAN"
        assert types["count"] == "BIGINT" and types["title"] == "VARCHAR"
        assert types["assignee__id"] == "BIGINT" and types["assignee__name"] == "VARCHAR"
        assert types["big"] == "VARCHAR"  # beyond 64 bits: kept exactly as text
        [row] = rows(
            tmp_path,
            "SELECT company_id, id, project_id, updated_at, due_date, assignee__name, big, "
            "data->>'$.title' FROM procore.rfis",
        )
        assert row == (
            COMPANY,
            1,
            10,
            BASE_TIME,
            date(2024, 6, 1),
            "Zoë Ångström",
            str(2**70),
            "original",
        )

    async def test_nested_lists_become_child_tables_replaced_with_their_parent(
        self, tmp_path: Path
    ) -> None:
        questions = [{"id": 1, "body": "which bolt?"}, {"id": 2, "body": "which nut?"}]
        async with make_destination(duckdb_url(tmp_path)) as destination:
            await destination.write(
                "rfis",
                COMPANY,
                [
                    make_record(1, questions=questions, tags=["a", "b"]),
                    make_record(2, questions=questions, tags=["c"]),
                ],
                run_id=RUN,
            )
            # Record 1 shrinks to one question; record 2 loses its list altogether.
            await destination.write(
                "rfis",
                COMPANY,
                [make_record(1, questions=questions[:1], tags=["a"]), make_record(2)],
                run_id=RUN,
            )
        children = rows(
            tmp_path,
            "SELECT company_id, _parent_id, _position, id, body "
            "FROM procore.rfis__questions ORDER BY _parent_id, _position",
        )
        assert children == [(COMPANY, 1, 0, 1, "which bolt?")]
        tags = rows(tmp_path, "SELECT _parent_id, value FROM procore.rfis__tags")
        assert tags == [(1, "a")]


class TestMerge:
    async def test_redelivery_never_duplicates_and_last_version_wins(self, tmp_path: Path) -> None:
        async with make_destination(duckdb_url(tmp_path)) as destination:
            await destination.write("rfis", COMPANY, make_batch(20), run_id=RUN)
            await destination.write("rfis", COMPANY, make_batch(20), run_id=RUN)
            await destination.write(
                "rfis",
                COMPANY,
                [make_record(5, title="first"), make_record(5, title="changed", minutes=9)],
                run_id=RUN,
            )
            await destination.write("rfis", COMPANY + 1, make_batch(3), run_id=RUN)
        assert rows(
            tmp_path, "SELECT COUNT(*), COUNT(DISTINCT (company_id, id)) FROM procore.rfis"
        ) == [(23, 23)]
        assert rows(
            tmp_path, "SELECT title FROM procore.rfis WHERE id = 5 AND company_id = ?", COMPANY
        ) == [("changed",)]

    async def test_concurrent_writes_are_grouped_and_each_returns_after_its_load(
        self, tmp_path: Path
    ) -> None:
        destination = make_destination(duckdb_url(tmp_path))
        assert isinstance(destination, WarehouseDestination)
        async with destination:
            results = await asyncio.gather(
                *(
                    destination.write("rfis", COMPANY, make_batch(100, start=i * 100), run_id=RUN)
                    for i in range(6)
                )
            )
            # Each write returned after its rows were in the warehouse.
            assert [r.written for r in results] == [100] * 6
            assert destination.loads < 6
        assert rows(tmp_path, "SELECT COUNT(*) FROM procore.rfis") == [(600,)]


class TestSchemaEvolution:
    async def test_a_new_field_adds_a_column(self, tmp_path: Path) -> None:
        async with make_destination(duckdb_url(tmp_path)) as destination:
            await destination.write("rfis", COMPANY, make_batch(2), run_id=RUN)
            result = await destination.write(
                "rfis", COMPANY, [make_record(3, reference="R-3")], run_id=RUN
            )
        assert result.written == 1 and not result.notes
        assert rows(tmp_path, "SELECT id, reference FROM procore.rfis ORDER BY id") == [
            (1, None),
            (2, None),
            (3, "R-3"),
        ]

    async def test_a_type_change_goes_to_a_variant_column_and_is_noted(
        self, tmp_path: Path
    ) -> None:
        url = duckdb_url(tmp_path)
        async with make_destination(url) as destination:
            await destination.write("rfis", COMPANY, [make_record(1, priority=3)], run_id=RUN)
        # A new process: the warehouse's schema is read back before loading.
        async with make_destination(url) as destination:
            result = await destination.write(
                "rfis", COMPANY, [make_record(2, priority="high")], run_id=RUN
            )
        assert result.written == 1
        assert result.notes and "priority__v_text" in result.notes[0]
        assert rows(
            tmp_path, "SELECT id, priority, priority__v_text FROM procore.rfis ORDER BY id"
        ) == [(1, 3, None), (2, None, "high")]


class TestDeletesPurgeQuarantine:
    async def test_deletes_set_deleted_at_once(self, tmp_path: Path) -> None:
        when = datetime(2024, 6, 1, tzinfo=UTC)
        async with make_destination(duckdb_url(tmp_path)) as destination:
            await destination.write("rfis", COMPANY, make_batch(4), run_id=RUN)
            marked = await destination.mark_deleted("rfis", COMPANY, [2, 3, 99], when, run_id=RUN)
            again = await destination.mark_deleted("rfis", COMPANY, [2], when, run_id=RUN)
            unknown = await destination.mark_deleted("users", COMPANY, [1], when, run_id=RUN)
        assert (marked, again, unknown) == (2, 0, 0)
        assert rows(tmp_path, "SELECT id, deleted_at FROM procore.rfis ORDER BY id") == [
            (1, None),
            (2, when),
            (3, when),
            (4, None),
        ]

    async def test_purge_removes_only_that_companys_rows(self, tmp_path: Path) -> None:
        async with make_destination(duckdb_url(tmp_path)) as destination:
            await destination.write(
                "rfis", COMPANY, make_batch(3, questions=[{"id": 1}]), run_id=RUN
            )
            await destination.write("rfis", 7, make_batch(2, questions=[{"id": 1}]), run_id=RUN)
            await destination.write(
                "rfis", COMPANY, [make_record(9, amount=float("nan"))], run_id=RUN
            )
            removed = await destination.purge(COMPANY, ["rfis", "users"])
        assert removed == {"rfis": 3}
        assert rows(tmp_path, "SELECT DISTINCT company_id FROM procore.rfis") == [(7,)]
        assert rows(tmp_path, "SELECT DISTINCT company_id FROM procore.rfis__questions") == [(7,)]
        assert rows(tmp_path, "SELECT COUNT(*) FROM procore.connector_quarantine") == [(0,)]

    async def test_a_poison_record_is_quarantined_not_fatal(self, tmp_path: Path) -> None:
        batch = [
            make_record(1),
            make_record(2, amount=float("inf")),
            make_record(3, title="lone \ud800"),
            DestinationRecord(id=2**70, project_id=1, updated_at=None, deleted_at=None, data={}),
        ]
        async with make_destination(duckdb_url(tmp_path)) as destination:
            result = await destination.write("rfis", COMPANY, batch, run_id=RUN)
            assert {q.id for q in result.quarantined} == {2, 3, 2**70}
            assert result.written == 1
            held = rows(
                tmp_path,
                "SELECT stream, record_id, run_id FROM procore.connector_quarantine "
                "ORDER BY record_id",
            )
            assert held == [
                ("rfis", "1180591620717411303424", RUN),
                ("rfis", "2", RUN),
                ("rfis", "3", RUN),
            ]
            # A later good version lands and leaves the quarantine.
            await destination.write("rfis", COMPANY, [make_record(2, amount=1.5)], run_id=RUN)
        assert rows(tmp_path, "SELECT id FROM procore.rfis ORDER BY id") == [(1,), (2,)]
        left = rows(tmp_path, "SELECT record_id FROM procore.connector_quarantine ORDER BY 1")
        assert left == [("1180591620717411303424",), ("3",)]


class TestURLAndPolicy:
    async def test_prefix_and_dataset(self, tmp_path: Path) -> None:
        url = duckdb_url(tmp_path, dataset="raw", table_prefix="procore_")
        async with make_destination(url) as destination:
            await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)
            assert "dataset 'raw'" in destination.describe()
        assert rows(tmp_path, "SELECT COUNT(*) FROM raw.procore_rfis") == [(1,)]

    def test_a_path_outside_the_root_is_refused(self, tmp_path: Path) -> None:
        policy = DestinationPolicy.of(tmp_path / "root")
        with pytest.raises(InvalidDestinationURL, match="outside CONNECTOR_DESTINATION_ROOT"):
            make_destination(duckdb_url(tmp_path), policy=policy)

    async def test_a_symlink_out_of_the_root_is_refused_at_open(self, tmp_path: Path) -> None:
        root = tmp_path / "root"
        root.mkdir()
        (tmp_path / "elsewhere").mkdir()
        policy = DestinationPolicy.of(root)
        destination = make_destination(f"dlt+duckdb:///{root}/lake/warehouse.duckdb", policy=policy)
        # A symlink placed after the URL was checked is followed when the destination opens.
        (root / "lake").symlink_to(tmp_path / "elsewhere")
        with pytest.raises(DestinationError, match="outside CONNECTOR_DESTINATION_ROOT"):
            await destination.open()
