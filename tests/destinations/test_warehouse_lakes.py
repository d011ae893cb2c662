"""The warehouse destination through dlt into PostgreSQL and into lakes (Parquet files in a
local folder and in S3 on moto's server over loopback)."""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest

from tests.destinations.conftest import POSTGRES_URL_VARIABLE, postgres_conninfo
from tests.destinations.factories import make_batch, make_destination, make_record
from tests.destinations.moto_s3 import S3Server, moto_endpoint, s3

__all__ = ["moto_endpoint", "s3"]

COMPANY = 4242
RUN = "run-1"
WHEN = datetime(2024, 6, 1, tzinfo=UTC)


async def exercise(url: str) -> tuple[object, int, dict[str, int]]:
    """Writes, re-delivers, deletes and purges; returns the first result, deletes, purge."""
    async with make_destination(url) as destination:
        first = await destination.write(
            "rfis", COMPANY, make_batch(3, questions=[{"id": 1, "body": "q"}]), run_id=RUN
        )
        await destination.write("rfis", COMPANY, make_batch(3), run_id=RUN)
        await destination.write("rfis", 7, [make_record(1)], run_id=RUN)
        marked = await destination.mark_deleted("rfis", COMPANY, [2], WHEN, run_id=RUN)
        return first, marked, {}


@pytest.fixture
async def dataset() -> AsyncIterator[tuple[str, str]]:
    """A dlt+postgres URL with a fresh dataset (and its staging schema dropped afterwards)."""
    base = os.environ[POSTGRES_URL_VARIABLE]
    name = f"wh_test_{secrets.token_hex(5)}"
    url = "dlt+postgres://" + base.partition("://")[2]
    async with await psycopg.AsyncConnection.connect(
        postgres_conninfo(base), autocommit=True, connect_timeout=10
    ) as conn:
        try:
            yield f"{url}{'&' if '?' in url else '?'}dataset={name}", base
        finally:
            for schema in (name, f"{name}_staging"):
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.postgres_only
class TestPostgresThroughDlt:
    async def test_typed_tables_merge_deletes_and_purge(self, dataset: tuple[str, str]) -> None:
        url, base = dataset
        name = url.rsplit("dataset=", 1)[1]
        _, marked, _ = await exercise(url)
        assert marked == 1
        async with await psycopg.AsyncConnection.connect(postgres_conninfo(base)) as conn:
            rows = await (
                await conn.execute(
                    f'SELECT company_id, id, deleted_at, title FROM "{name}".rfis ORDER BY 1, 2'  # noqa: S608
                )
            ).fetchall()
            assert rows == [
                (7, 1, None, "original"),
                (COMPANY, 1, None, "original"),
                (COMPANY, 2, WHEN, "original"),
                (COMPANY, 3, None, "original"),
            ]
            kinds = dict(
                await (
                    await conn.execute(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = %s AND table_name = 'rfis'",
                        (name,),
                    )
                ).fetchall()
            )
            assert kinds["data"] == "jsonb" and kinds["updated_at"] == "timestamp with time zone"
            # The second delivery had no questions: the children went with it.
            children = await (
                await conn.execute(f'SELECT COUNT(*) FROM "{name}".rfis__questions')  # noqa: S608
            ).fetchone()
            assert children == (0,)
        async with make_destination(url) as destination:
            nul = await destination.write("rfis", COMPANY, [make_record(9, t="a\x00b")], run_id=RUN)
            assert [q.id for q in nul.quarantined] == [9]  # text cannot hold U+0000
            assert await destination.purge(COMPANY, ["rfis"]) == {"rfis": 3}


class TestLakes:
    async def test_local_parquet_lake_appends_and_purges_by_company(self, tmp_path: Path) -> None:
        url = f"dlt+filesystem+file://{tmp_path}/lake"
        _, marked, _ = await exercise(url)
        assert marked == 1  # a tombstone appended
        folder = tmp_path / "lake" / "procore" / "rfis"
        assert sorted(p.name for p in folder.iterdir()) == ["4242", "7"]
        rows = sum(pq.read_table(p).num_rows for p in (folder / "4242").glob("*.parquet"))
        assert rows == 3 + 3 + 1
        async with make_destination(url) as destination:
            assert await destination.purge(COMPANY, ["rfis"]) == {"rfis": 7}
        assert sorted(p.name for p in folder.iterdir()) == ["7"]
        assert not (tmp_path / "lake" / "procore" / "rfis__questions" / "4242").exists()

    async def test_s3_lake_on_moto(self, s3: S3Server) -> None:
        url = s3.url("dlt+filesystem+s3", prefix="lake")
        await exercise(url)
        keys = s3.list_keys("lake/procore/rfis/")
        assert {key.split("/")[3] for key in keys} == {"4242", "7"}
        table = pq.read_table(
            io.BytesIO(s3.read(next(k for k in keys if "/4242/" in k and k.endswith(".parquet"))))
        )
        assert {"company_id", "id", "data", "title", "assignee__name"} <= set(table.column_names)
        async with make_destination(url) as destination:
            removed = await destination.purge(COMPANY, ["rfis"])
        assert removed == {"rfis": 7}
        assert not s3.list_keys("lake/procore/rfis/4242/")
        assert s3.list_keys("lake/procore/rfis/7/")
