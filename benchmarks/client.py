"""What the Procore client costs: requests per listing, 429s under a spike limit, speed, memory.

Runs the Procore simulator in a separate process (so its memory is not ours), then, over real
loopback HTTP:

1. lists one project's RFIs (``--records``, default 100 000) at ``--per-page`` and prints the
   requests used divided by the minimum possible, records per second and peak RSS;
2. sets a spike limit of 15 requests per 10 seconds and lists again with three concurrent tasks
   at a page size that needs ``--spike-requests`` requests, and prints the 429s received.

    python benchmarks/client.py [--records 100000] [--per-page 1000] [--spike-requests 45]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import resource
import sys
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def serve(records: int, url_queue: Any, stop: Event) -> None:
    """Runs the simulator until ``stop`` is set (in the child process)."""
    from procore_sim import SimulatorConfig
    from procore_sim.server import SimulatorServer

    # Rate limits raised: this measures the client's throughput, not Procore's limits.
    config = SimulatorConfig.lenient(companies=1, projects=1, records=records, seed=1)
    with SimulatorServer(config) as sim:
        url_queue.put(sim.url)
        stop.wait()


def peak_rss_mb() -> float:
    """Returns this process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(url: str, records: int, per_page: int, spike_requests: int) -> dict[str, float]:
    """Runs both measurements and returns the figures."""
    import httpx

    from app.procore import ProcoreClient, ProcoreCredentials, RequestStats, make_http_client
    from procore_sim.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

    creds = ProcoreCredentials(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    figures: dict[str, float] = {}
    async with make_http_client() as http, httpx.AsyncClient(base_url=url, timeout=120) as control:
        company_id = (await control.get("/_sim/companies")).json()["companies"][0]["id"]
        project_id = (await control.get("/_sim/companies")).json()["companies"][0]["project_ids"][0]
        path = f"/rest/v1.0/projects/{project_id}/rfis"
        client = ProcoreClient(http, api_url=url, login_url=url, per_page=per_page)
        stats = RequestStats()
        # warm-up (not counted): the simulator generates the records on first use
        await client.get(creds, path, company_id=company_id, params={"per_page": 1}, stats=stats)
        figures["token_requests"] = stats.token_requests
        stats = RequestStats()
        rss_before = peak_rss_mb()
        started = time.perf_counter()
        listed = 0
        async for page in client.paginate(creds, path, company_id=company_id, stats=stats):
            listed += len(page.records)
        elapsed = time.perf_counter() - started
        assert listed == records, (listed, records)
        figures["requests_ratio"] = stats.requests / math.ceil(records / per_page)
        figures["records_per_second"] = listed / elapsed
        figures["peak_rss_mb"] = peak_rss_mb()
        figures["rss_growth_mb"] = peak_rss_mb() - rss_before

        await control.put("/_sim/limits", json={"spike": 15, "spike_window_seconds": 10})
        await control.delete("/_sim/requests")
        spiky = ProcoreClient(
            http, api_url=url, login_url=url, per_page=math.ceil(records / (spike_requests / 3))
        )
        spike_stats = RequestStats()

        async def listing() -> int:
            count = 0
            async for page in spiky.paginate(creds, path, company_id=company_id, stats=spike_stats):
                count += len(page.records)
            return count

        started = time.perf_counter()
        counts = await asyncio.gather(listing(), listing(), listing())
        figures["spike_seconds"] = time.perf_counter() - started
        assert list(counts) == [records] * 3
        log = (await control.get("/_sim/requests", params={"status": 429})).json()
        figures["spike_requests"] = spike_stats.requests
        figures["spike_429s_client"] = spike_stats.statuses.get(429, 0)
        figures["spike_429s_simulator"] = log["count"]
        figures["spike_rate"] = spike_stats.requests / figures["spike_seconds"]
    return figures


def main() -> None:
    """Starts the simulator process, runs the measurements and prints the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--per-page", type=int, default=1000)
    parser.add_argument("--spike-requests", type=int, default=45)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    url_queue = context.Queue()
    stop = context.Event()
    server = context.Process(target=serve, args=(args.records, url_queue, stop), daemon=True)
    server.start()
    try:
        url = url_queue.get(timeout=60)
        figures = asyncio.run(run(url, args.records, args.per_page, args.spike_requests))
    finally:
        stop.set()
        server.join(10)

    print(f"records listed:                       {args.records} at per_page={args.per_page}")
    print(
        f"requests used / minimum possible:     {figures['requests_ratio']:.2f} "
        f"(token requests in the whole run: {figures['token_requests']:.0f})"
    )
    print(f"records per second:                   {figures['records_per_second']:,.0f}")
    print(
        f"peak RSS while listing:               {figures['peak_rss_mb']:.1f} MiB "
        f"(grew {figures['rss_growth_mb']:.1f} MiB during the listing)"
    )
    print(
        f"429s under 15 requests / 10 s spike:  {figures['spike_429s_simulator']:.0f} "
        f"({figures['spike_requests']:.0f} requests by 3 concurrent listings in "
        f"{figures['spike_seconds']:.1f} s: {figures['spike_rate']:.2f} requests/s "
        f"against a limit of 1.50)"
    )


if __name__ == "__main__":
    main()
