"""How many records per second the simulator serves to one client at per_page=1000.

Runs `python -m procore_sim` in its own process and reads one project's RFIs over loopback
HTTP, following Link rel="next" like the connector does, and prints records/s.

    python benchmarks/simulator.py [--records 20000] [--rounds 5] [--per-page 1000]
"""

from __future__ import annotations

import argparse
import time

import httpx

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorProcess


def read_all(client: httpx.Client, url: str, headers: dict[str, str]) -> tuple[int, int]:
    """(records, requests) of one full listing, following Link next."""
    records = requests = 0
    next_url: str | None = url
    while next_url:
        response = client.get(next_url, headers=headers)
        response.raise_for_status()
        records += len(response.json())
        requests += 1
        link = response.links.get("next")
        next_url = link["url"] if link else None
    return records, requests


def main() -> None:
    """Starts the simulator, warms it up, times full listings and prints the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-page", type=int, default=1000)
    args = parser.parse_args()

    with (
        # Rate limits raised: this measures the simulator's throughput, not Procore's limits.
        SimulatorProcess(
            SimulatorConfig.lenient(companies=1, projects=1, records=args.records)
        ) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
    ):
        creds = client.get("/_sim/clients").json()["clients"][0]
        token = client.post(
            "/oauth/token", data={"grant_type": "client_credentials", **creds}
        ).json()["access_token"]
        company = client.get("/_sim/companies").json()["companies"][0]
        headers = {"Authorization": f"Bearer {token}", "Procore-Company-Id": str(company["id"])}
        url = f"/rest/v1.0/projects/{company['project_ids'][0]}/rfis?per_page={args.per_page}"
        started = time.perf_counter()
        read_all(client, url, headers)  # first listing generates the records
        print(
            f"warm-up (includes generating {args.records} RFIs): "
            f"{time.perf_counter() - started:.2f}s"
        )
        rates = []
        for round_number in range(1, args.rounds + 1):
            started = time.perf_counter()
            records, requests = read_all(client, url, headers)
            elapsed = time.perf_counter() - started
            rates.append(records / elapsed)
            print(
                f"round {round_number}: {records} records in {requests} requests, "
                f"{elapsed:.3f}s = {records / elapsed:,.0f} records/s, "
                f"{requests / elapsed:.1f} pages/s"
            )
        rates.sort()
        print(
            f"median: {rates[len(rates) // 2]:,.0f} records/s "
            f"(per_page={args.per_page}, one client, loopback HTTP, includes JSON "
            f"parsing on the client)"
        )


if __name__ == "__main__":
    main()
