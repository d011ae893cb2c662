"""Rows per second for each destination: SQLite, PostgreSQL (if reachable), files, HTTP push.

Run from the repository root:  python -m benchmarks.destinations [--records 50000] [--batch 1000]
PostgreSQL is taken from --postgres-url, else CONNECTOR_TEST_POSTGRES_URL, else the local
default; each run works in a fresh schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from app.destinations import (
    Destination,
    DestinationPolicy,
    DestinationRecord,
    create_destination,
)
from app.destinations.signing import generate_signing_secret
from tests.destinations.receiver import Receiver

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BASE_TIME = datetime(2024, 5, 1, tzinfo=UTC)
ANYWHERE = DestinationPolicy.unrestricted()  # a benchmark on loopback and a scratch folder


@dataclass(slots=True)
class Result:
    """One measured pass."""

    name: str
    rows: int
    seconds: float

    def line(self) -> str:
        """Returns the printed line."""
        rate = self.rows / self.seconds if self.seconds else float("inf")
        return f"{self.name:<34} {self.rows:>8} rows {self.seconds:>8.2f} s {rate:>12,.0f} rows/s"


def make_records(count: int) -> list[DestinationRecord]:
    """Returns records shaped like Procore RFIs (about 700 bytes of JSON each)."""
    records = []
    for record_id in range(1, count + 1):
        updated_at = BASE_TIME + timedelta(seconds=record_id)
        data = {
            "id": record_id,
            "number": str(record_id),
            "subject": f"Clarify detail {record_id} on sheet A-{record_id % 500}",
            "status": "open" if record_id % 3 else "closed",
            "due_date": "2024-06-01",
            "updated_at": updated_at.isoformat().replace("+00:00", "Z"),
            "created_at": "2024-04-01T09:00:00Z",
            "assignee": {"id": record_id % 97, "name": "Pat Builder", "login": "pat@example.com"},
            "rfi_manager": {"id": 5, "name": "Sam Manager"},
            "questions": [{"id": record_id * 10, "body": "Which anchor bolt spec applies? " * 4}],
            "cost_impact": {"status": "tbd", "value": None},
            "location": {"id": 12, "name": "Level 2 > Grid C4"},
        }
        records.append(DestinationRecord(record_id, 100 + record_id % 20, updated_at, None, data))
    return records


async def timed(
    name: str,
    destination: Destination,
    records: list[DestinationRecord],
    batch_size: int,
    *,
    passes: int = 1,
) -> list[Result]:
    """Writes every record in batches `passes` times and returns one result per pass."""
    results = []
    async with destination:
        for number in range(passes):
            started = time.perf_counter()
            for start in range(0, len(records), batch_size):
                batch = records[start : start + batch_size]
                await destination.write("rfis", 1, batch, run_id=f"bench-{number}")
            await destination.finish_run(f"bench-{number}", succeeded=True)
            label = name if passes == 1 else f"{name} ({'insert' if number == 0 else 'update'})"
            results.append(Result(label, len(records), time.perf_counter() - started))
    return results


async def postgres_schema(url: str) -> tuple[str, Callable[[], Awaitable[None]]] | str:
    """Returns (destination URL in a fresh schema, cleanup) or the reason it is unusable."""
    conninfo = "postgresql://" + url.partition("://")[2]
    schema = f"bench_{secrets.token_hex(4)}"
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, connect_timeout=3)
    except psycopg.Error as error:
        return f"unreachable ({type(error).__name__})"

    async def drop() -> None:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()

    separator = "&" if "?" in url else "?"
    return f"{url}{separator}schema={schema}", drop


async def run(records_count: int, batch_size: int, postgres_url: str) -> None:
    """Runs every benchmark and prints one line per pass."""
    records = make_records(records_count)
    print(f"{records_count} records in batches of {batch_size}")
    with tempfile.TemporaryDirectory(prefix="dest-bench-") as scratch:
        root = Path(scratch)
        sqlite = create_destination(f"sqlite:///{root}/bench.db", policy=ANYWHERE)
        for result in await timed("SQLite", sqlite, records, batch_size, passes=2):
            print(result.line())

        prepared = await postgres_schema(postgres_url)
        if isinstance(prepared, str):
            print(f"{'PostgreSQL':<34} skipped: {prepared}")
        else:
            url, cleanup = prepared
            try:
                for result in await timed(
                    "PostgreSQL",
                    create_destination(url, policy=ANYWHERE),
                    records,
                    batch_size,
                    passes=2,
                ):
                    print(result.line())
            finally:
                await cleanup()

        [files] = await timed(
            "Files (JSON lines)",
            create_destination(f"file://{root}/jsonl", policy=ANYWHERE),
            records,
            batch_size,
        )
        print(files.line())
        if importlib.util.find_spec("pyarrow") is not None:
            [parquet] = await timed(
                "Files (Parquet)",
                create_destination(f"file://{root}/parquet?format=parquet", policy=ANYWHERE),
                records,
                batch_size,
            )
            print(parquet.line())
        else:
            print(f"{'Files (Parquet)':<34} skipped: pyarrow not installed")

        secret = generate_signing_secret()
        receiver = Receiver(secret).start()
        try:
            [http] = await timed(
                "HTTP push (loopback, verified)",
                create_destination(receiver.url, signing_secret=secret, policy=ANYWHERE),
                records,
                batch_size,
            )
            print(http.line())
        finally:
            receiver.stop()


def main() -> None:
    """Parses the arguments and runs the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CONNECTOR_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
    )
    arguments: Any = parser.parse_args()
    asyncio.run(run(arguments.records, arguments.batch, arguments.postgres_url))


if __name__ == "__main__":
    main()
