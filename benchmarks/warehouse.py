"""Rows per second into warehouses through dlt, next to the native SQL destinations, in one run.

Run from the repository root:  python -m benchmarks.warehouse [--records 20000] [--batch 1000]
Each destination gets the same RFI-like records (benchmarks.destinations.make_records) in
batches of --batch, written first one batch at a time (a company-scoped stream) and then
--writers batches at a time (the engine writes `project_concurrency` pages at once; the
warehouse destination groups concurrent writes into one load). Every write returns only after
its batch is durable, as the engine requires before a checkpoint. Prints rows/s and the
warehouse-to-native ratio (goal: dlt into DuckDB >= 0.5x native SQLite).

The kill -9 proof (no checkpoint ahead of a durable load) is a test:
tests/destinations/test_warehouse_kill.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from app.destinations import Destination, DestinationRecord, create_destination
from benchmarks.destinations import ANYWHERE, DEFAULT_POSTGRES_URL, make_records, postgres_schema


async def timed(
    destination: Destination, records: list[DestinationRecord], batch: int, writers: int
) -> float:
    """Writes every record (`writers` batches at a time); returns rows per second."""
    batches = [records[start : start + batch] for start in range(0, len(records), batch)]
    started = time.perf_counter()
    for first in range(0, len(batches), writers):
        group = batches[first : first + writers]
        await asyncio.gather(
            *(destination.write("rfis", 1, part, run_id="bench") for part in group)
        )
    await destination.finish_run("bench", succeeded=True)
    return len(records) / (time.perf_counter() - started)


async def measure(url: str, records: list[DestinationRecord], batch: int, writers: int) -> str:
    """One line: rows/s sequentially and with concurrent writers (fresh data each time)."""
    destination = create_destination(url, policy=ANYWHERE)
    async with destination:
        one = await timed(destination, records, batch, 1)
    destination = create_destination(url, policy=ANYWHERE)
    async with destination:
        many = await timed(destination, records, batch, writers)
    return f"{one:>10,.0f} {many:>14,.0f}"


async def run(records_count: int, batch: int, writers: int, postgres_url: str) -> None:
    """Prints one line per destination."""
    records = make_records(records_count)
    print(f"{records_count} records in batches of {batch}; rows/s")
    print(f"{'destination':<34} {'1 writer':>10} {writers:>2} writers (merge)")
    with tempfile.TemporaryDirectory(prefix="warehouse-bench-") as scratch:
        root = Path(scratch)
        lines: dict[str, str] = {}
        lines["SQLite (native)"] = await measure(
            f"sqlite:///{root}/native.db", records, batch, writers
        )
        lines["DuckDB through dlt"] = await measure(
            f"dlt+duckdb:///{root}/w.duckdb", records, batch, writers
        )
        lines["Parquet files through dlt"] = await measure(
            f"dlt+filesystem+file://{root}/lake", records, batch, writers
        )
        prepared = await postgres_schema(postgres_url)
        if isinstance(prepared, str):
            lines["PostgreSQL"] = f"skipped: {prepared}"
        else:
            url, cleanup = prepared
            schema = url.rsplit("schema=", 1)[1]
            try:
                lines["PostgreSQL (native)"] = await measure(url, records, batch, writers)
                base = postgres_url.replace("postgresql://", "dlt+postgres://", 1)
                separator = "&" if "?" in base else "?"
                lines["PostgreSQL through dlt"] = await measure(
                    f"{base}{separator}dataset={schema}", records, batch, writers
                )
            finally:
                await cleanup()
                await drop_dataset(postgres_url, f"{schema}_staging")
        for name, line in lines.items():
            print(f"{name:<34} {line}")
        native = [float(v.replace(",", "")) for v in lines["SQLite (native)"].split()]
        duck = [float(v.replace(",", "")) for v in lines["DuckDB through dlt"].split()]
        print(
            f"DuckDB through dlt / native SQLite: {duck[0] / native[0]:.2f}x with 1 writer, "
            f"{duck[1] / native[1]:.2f}x with {writers} (goal 0.5x)"
        )


async def drop_dataset(url: str, schema: str) -> None:
    """Drops dlt's staging schema beside the scratch schema."""
    import psycopg

    conninfo = "postgresql://" + url.partition("://")[2]
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    """Parses the arguments and runs the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CONNECTOR_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
    )
    arguments: Any = parser.parse_args()
    asyncio.run(run(arguments.records, arguments.batch, arguments.writers, arguments.postgres_url))


if __name__ == "__main__":
    main()
