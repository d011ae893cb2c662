"""Peak memory of a worker syncing 10,000 and 1,000,000 records (nothing should grow with the data).

    python -m benchmarks.memory [--small 10000] [--large 1000000] [--postgres URL]

The Procore simulator keeps every record it serves in memory and takes minutes to generate a
million RFIs (about 18 KB and 0.7 ms each), so this benchmark serves the listing from a
streaming twin in a child process instead: one real RFI taken from the simulator is the
template, every page is made on request with its own ids and timestamps, with Procore's
`Link`, `Total` and `Per-Page` headers, and nothing is kept. Each sync runs in a fresh
process (peak RSS is a high-water mark): a full sync of the `rfis` stream, end to end, into a
SQLite destination (and PostgreSQL when reachable), 1,000 records a page.

Shape: `--per-project` RFIs in every project (1,000 by default), so 10,000 records are 10
projects and 1,000,000 are 1,000 projects: what a unit holds (a page, the ids it saw for delete
detection) is the same in both, and anything that grows is an accumulation over the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

PER_PAGE = 1000
COMPANY_ID = 1


def template_rfi() -> dict[str, Any]:
    """One RFI exactly as the simulator serves it."""
    from procore_sim import SimulatorConfig
    from procore_sim.state import Simulator

    sim = Simulator(SimulatorConfig(companies=1, projects=1, records=1, seed=1))
    company = sim.company_ids()[0]
    return dict(sim.records("rfis", company, sim.project_ids(company)[0])[0])


def serve(port: int, projects: int, records: int, template: dict[str, Any]) -> None:
    """The streaming twin (child process): token, projects, RFI pages, empty recycle bins."""
    import orjson
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    base = datetime(2024, 1, 1, tzinfo=UTC)

    def page_of(request: Request, total: int, make: Any) -> Response:
        page = int(request.query_params.get("page", 1))
        per_page = int(request.query_params.get("per_page", 100))
        first = (page - 1) * per_page
        rows = [make(i) for i in range(first, min(first + per_page, total))]
        headers = {"Total": str(total), "Per-Page": str(per_page)}
        if first + per_page < total:
            url = request.url.include_query_params(page=page + 1)
            headers["Link"] = f'<{url}>; rel="next"'
        return Response(orjson.dumps(rows), headers=headers, media_type="application/json")

    async def token(_: Request) -> Response:
        body = {"access_token": "twin", "token_type": "bearer", "expires_in": 7200}
        return Response(orjson.dumps(body), media_type="application/json")

    async def project_list(request: Request) -> Response:
        stamp = base.isoformat().replace("+00:00", "Z")
        return page_of(
            request,
            projects,
            lambda i: {"id": 1000 + i, "name": f"P{i}", "updated_at": stamp, "active": True},
        )

    async def rfis(request: Request) -> Response:
        project = int(request.path_params["project_id"])

        def make(i: int) -> dict[str, Any]:
            stamp = (base + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
            return template | {"id": project * 10_000_000 + i, "updated_at": stamp}

        return page_of(request, records, make)

    async def empty(_: Request) -> Response:
        return Response(b"[]", media_type="application/json")

    app = Starlette(
        routes=[
            Route("/oauth/token", token, methods=["POST"]),
            Route("/rest/v1.1/projects", project_list),
            Route("/rest/v1.0/projects/{project_id:int}/rfis", rfis),
            Route("/rest/v1.0/projects/{project_id:int}/rfis/recycle_bin", empty),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def one_sync(twin: str, destination: str) -> dict[str, Any]:
    """A full sync of the twin's RFIs in this process; returns its figures."""
    from app.core.logging import configure_logging
    from benchmarks.harness import bench_settings, one_run, runtime_with_installation

    configure_logging("WARNING", "console")
    work = Path(tempfile.mkdtemp(prefix="memory-"))
    url = destination.replace("{work}", str(work))
    settings = bench_settings(work, twin, url, streams="rfis", per_page=PER_PAGE)
    rt = await runtime_with_installation(settings, COMPANY_ID)
    try:
        elapsed, stats = await one_run(rt, COMPANY_ID, full=True)
    finally:
        await rt.aclose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"records": int(stats["records"]), "seconds": elapsed, "peak_mib": peak}


def measure(projects: int, records: int, destination: str) -> dict[str, Any]:
    """Starts the twin, runs one sync in a fresh worker process, returns its figures."""
    port = free_port()
    context = multiprocessing.get_context("spawn")
    twin = context.Process(
        target=serve, args=(port, projects, records, template_rfi()), daemon=True
    )
    twin.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the twin did not start") from None
                time.sleep(0.1)
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", "--one", f"http://127.0.0.1:{port}",
             destination],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return figures
    finally:
        twin.terminate()
        twin.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--per-project", type=int, default=1000)
    parser.add_argument("--postgres", default=None, help="also measure a PostgreSQL destination")
    parser.add_argument(
        "--one", nargs=2, metavar=("TWIN_URL", "DESTINATION"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(one_sync(*args.one))))
        return
    destinations = {"SQLite": "sqlite:///{work}/dest.db"}
    if args.postgres:
        from benchmarks.harness import make_postgres_database

        try:
            destinations["PostgreSQL"] = make_postgres_database(args.postgres)
        except psycopg.OperationalError as exc:
            print(f"PostgreSQL unreachable ({type(exc).__name__}): skipped")
    for name, destination in destinations.items():
        results = []
        for total in (args.small, args.large):
            projects = max(1, total // args.per_project)
            figures = measure(projects, total // projects, destination)
            assert figures["records"] == total, figures
            results.append(figures)
            print(
                f"{name}: {total:>9,} records ({projects} projects): peak RSS "
                f"{figures['peak_mib']:6.1f} MiB, {figures['seconds']:6.1f} s, "
                f"{total / figures['seconds']:,.0f} records/s"
            )
        ratio = results[1]["peak_mib"] / results[0]["peak_mib"]
        print(f"{name}: peak at {args.large:,} / peak at {args.small:,} = {ratio:.2f}")
        if name == "PostgreSQL":
            from benchmarks.harness import drop_postgres_database

            drop_postgres_database(destination)


if __name__ == "__main__":
    main()
