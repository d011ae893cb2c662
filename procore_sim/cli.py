"""Command-line entry: serve the simulator in the foreground until interrupted."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence

import uvicorn

from procore_sim.application import create_app
from procore_sim.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimulatorConfig

DEFAULT_PORT = 8765


def run(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    companies: int = 2,
    projects: int = 3,
    records: int = 50,
    seed: int = 1,
    client_id: str | None = None,
    client_secret: str | None = None,
) -> None:
    """Prints the URL and client credentials, then serves until interrupted."""
    config = SimulatorConfig(
        companies=companies,
        projects=projects,
        records=records,
        seed=seed,
        client_id=client_id or DEFAULT_CLIENT_ID,
        client_secret=client_secret or DEFAULT_CLIENT_SECRET,
    )
    url = f"http://{host}:{port}"
    print(f"Procore simulator on {url} (API and login base URL)", flush=True)
    print(f"  client_id:     {config.client_id}", flush=True)
    print(f"  client_secret: {config.client_secret}", flush=True)
    print(
        f"  {companies} companies x {projects} projects, {records} records per stream, "
        f"seed {seed}; control API under {url}/_sim/",
        flush=True,
    )
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of `python -m procore_sim`."""
    parser = argparse.ArgumentParser(
        prog="python -m procore_sim", description="Run the Procore API simulator."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="TCP port of the API and login endpoints"
    )
    parser.add_argument("--companies", type=int, default=2, help="simulated Procore companies")
    parser.add_argument("--projects", type=int, default=3, help="projects per company")
    parser.add_argument("--records", type=int, default=50, help="records per stream and project")
    parser.add_argument(
        "--seed", type=int, default=1, help="random seed: the same seed, the same data"
    )
    parser.add_argument(
        "--client-id", default=None, help="the simulated app's DMSA client id (default: printed)"
    )
    parser.add_argument(
        "--client-secret",
        default=None,
        help="the simulated app's DMSA client secret (default: printed)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parses arguments and runs the simulator."""
    args = build_parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        run(
            args.host,
            args.port,
            args.companies,
            args.projects,
            args.records,
            args.seed,
            args.client_id,
            args.client_secret,
        )
