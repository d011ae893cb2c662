"""End-to-end sync speed against the wire: a bare httpx client and the connector, same run.

    python -m benchmarks.throughput [--projects 10] [--records 2000] [--latency-ms 20]
                                    [--concurrency 8] [--rounds 3] [--postgres URL]

One simulator process (its own GIL) serves one company with `--projects` projects of
`--records` RFIs each and waits `--latency-ms` before every answer (a WAN round trip). Then,
alternately for `--rounds` rounds:

- **bare**: a plain `httpx.AsyncClient` lists the projects and every project's RFIs,
  `--concurrency` projects at a time, following `Link: next` and parsing the JSON, nothing
  written: the most a Python client can read from this server;
- **connector**: a full sync of the `rfis` stream, end to end (run queued, claimed, projects
  listed, pages read, converted, upserted with checkpoints saved after each page, delete
  feed read, run recorded as succeeded) into SQLite, then into PostgreSQL, with
  `CONNECTOR_PROJECT_CONCURRENCY` = `--concurrency`.

It prints the median records/s of each and the ratio connector / bare.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

import psycopg

from app.core.logging import configure_logging
from benchmarks.harness import (
    DEFAULT_POSTGRES,
    bare_listing,
    bench_settings,
    drop_postgres_database,
    first_company,
    make_postgres_database,
    one_run,
    prepare_simulator,
    runtime_with_installation,
)
from procore_sim.server import SimulatorProcess

RFIS = "/rest/v1.0/projects/{project_id}/rfis"


async def connector_rate(sim_url: str, destination: str, concurrency: int) -> tuple[float, int]:
    """(records/s, requests) of one full sync of the RFIs into `destination`."""
    company_id = int(first_company(sim_url)["id"])
    work = Path(tempfile.mkdtemp(prefix="throughput-"))
    url = destination.replace("{work}", str(work))
    settings = bench_settings(
        work, sim_url, url, streams="rfis", project_concurrency=concurrency, per_page=1000
    )
    rt = await runtime_with_installation(settings, company_id)
    try:
        elapsed, stats = await one_run(rt, company_id, full=True)
    finally:
        await rt.aclose()
    return int(stats["records"]) / elapsed, int(stats["requests"])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--records", type=int, default=2000, help="RFIs per project")
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    total = args.projects * args.records
    print(
        f"throughput: {total:,} RFIs ({args.projects} projects x {args.records}), "
        f"{args.latency_ms:g} ms per request, {args.concurrency} projects at a time, "
        f"median of {args.rounds} rounds"
    )
    rates: dict[str, list[float]] = {"bare": [], "sqlite": [], "postgresql": []}
    requests: dict[str, int] = {}
    with SimulatorProcess(projects=args.projects, records=args.records) as sim:
        prepare_simulator(sim.url, latency_ms=0)
        asyncio.run(bare_listing(sim.url, RFIS, concurrency=args.concurrency))  # generates data
        prepare_simulator(sim.url, latency_ms=args.latency_ms)
        for _ in range(args.rounds):
            listing = asyncio.run(bare_listing(sim.url, RFIS, concurrency=args.concurrency))
            assert listing.records == total, (listing.records, total)
            rates["bare"].append(listing.rate)
            requests["bare"] = listing.requests
            rate, requests["sqlite"] = asyncio.run(
                connector_rate(sim.url, "sqlite:///{work}/dest.db", args.concurrency)
            )
            rates["sqlite"].append(rate)
            try:
                pg = make_postgres_database(args.postgres)
            except psycopg.OperationalError as exc:
                print(f"PostgreSQL unreachable ({type(exc).__name__}): skipped")
                continue
            try:
                rate, requests["postgresql"] = asyncio.run(
                    connector_rate(sim.url, pg, args.concurrency)
                )
                rates["postgresql"].append(rate)
            finally:
                drop_postgres_database(pg)
    bare = statistics.median(rates["bare"])
    print(f"  bare httpx:              {bare:9,.0f} records/s  ({requests['bare']} requests)")
    for name in ("sqlite", "postgresql"):
        if rates[name]:
            rate = statistics.median(rates[name])
            print(
                f"  connector -> {name:10s}  {rate:9,.0f} records/s  "
                f"({requests[name]} requests)  ratio {rate / bare:.2f}"
            )
    print("  rounds (records/s): " + "; ".join(
        f"{k} " + ", ".join(f"{r:,.0f}" for r in v) for k, v in rates.items() if v
    ))  # fmt: skip


if __name__ == "__main__":
    main()
