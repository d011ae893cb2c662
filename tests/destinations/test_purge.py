"""Purging one company from each kind of destination leaves the other companies alone."""

from __future__ import annotations

import json
from pathlib import Path

from app.destinations import create_destination
from tests.destinations.factories import make_record
from tests.destinations.receiver import Receiver
from tests.destinations.test_sql import read_rows

RUN = "run-1"


class TestPurge:
    async def test_sql_deletes_only_that_companys_rows(self, sql_url: str) -> None:
        async with create_destination(sql_url) as destination:
            for company in (1, 2):
                await destination.write(
                    "rfis", company, [make_record(10), make_record(11)], run_id=RUN
                )
                await destination.write("users", company, [make_record(20)], run_id=RUN)
            deleted = await destination.purge(1)
        assert deleted == {"rfis": 2, "users": 1}
        assert {row["company_id"] for row in await read_rows(sql_url, "rfis")} == {2}

    async def test_files_remove_the_company_folder(self, tmp_path: Path) -> None:
        async with create_destination(f"file://{tmp_path}") as destination:
            for company in (1, 2):
                await destination.write("rfis", company, [make_record(10)], run_id=RUN)
            await destination.finish_run(RUN, succeeded=True)
            assert await destination.purge(1) == {"rfis": 1}
        assert not (tmp_path / "1").exists() and (tmp_path / "2" / "rfis").is_dir()

    async def test_http_sends_a_signed_purge_request(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        async with create_destination(receiver.url, signing_secret=signing_secret) as destination:
            assert await destination.purge(7) == {}
        [delivery] = receiver.deliveries
        assert delivery.signature_error is None
        assert json.loads(delivery.body)["type"] == "company.purge"
        assert delivery.payload["company_id"] == 7
