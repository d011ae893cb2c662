"""`python -m procore_sim` serves on the given port and prints the client credentials."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from procore_sim import SimulatorConfig
from procore_sim.cli import build_parser


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TestCli:
    def test_defaults(self) -> None:
        args = build_parser().parse_args([])
        assert (args.port, args.companies, args.projects, args.records, args.seed) == (
            8765,
            2,
            3,
            50,
            1,
        )

    def test_module_serves_and_prints_credentials(self) -> None:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "procore_sim",
                "--port",
                str(port),
                "--companies",
                "1",
                "--records",
                "5",
                "--client-id",
                "cli-id",
                "--client-secret",
                "cli-secret",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            banner = [process.stdout.readline() for _ in range(3)]
            assert f"http://127.0.0.1:{port}" in banner[0]
            assert "cli-id" in banner[1] and "cli-secret" in banner[2]
            deadline = time.monotonic() + 15
            while True:
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/_sim/clients")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "simulator did not start"
                    time.sleep(0.1)
            assert response.json() == {
                "clients": [{"client_id": "cli-id", "client_secret": "cli-secret"}]
            }
            companies = httpx.get(f"http://127.0.0.1:{port}/_sim/companies").json()
            assert len(companies["companies"]) == 1
        finally:
            process.terminate()
            process.wait(10)


BANNER_LINES = 4 + len(SimulatorConfig().behaviours())


@contextmanager
def serving(command: Sequence[str]) -> Iterator[tuple[list[str], str]]:
    """Runs a simulator command on a free port; yields its banner and base URL once it serves."""
    port = free_port()
    process = subprocess.Popen([*command, "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline().strip() for _ in range(BANNER_LINES)]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/_sim/clients")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "simulator did not start"
                time.sleep(0.1)
        yield banner, url
    finally:
        process.terminate()
        process.wait(10)


def spike_statuses(url: str, count: int) -> list[int]:
    """Statuses of `count` quick API calls with a fresh token."""
    token = httpx.post(
        f"{url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sim-client-id",
            "client_secret": "sim-client-secret",
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    return [
        httpx.get(f"{url}/rest/v1.0/companies", headers=headers).status_code for _ in range(count)
    ]


class TestBehaviourOptions:
    CONNECTOR = str(Path(sys.executable).parent / "connector")

    def test_connector_simulator_defaults_are_production_and_printed(self) -> None:
        with serving([self.CONNECTOR, "simulator", "--companies", "1", "--records", "3"]) as (
            banner,
            url,
        ):
            text = "\n".join(banner)
            assert "3600 per 3600 s (fixed window), 25 per rolling 10 s" in text
            assert "projects max 300" in text
            assert "commitments compact unless view=extended: on" in text
            assert "manpower logs approved only unless filters[status]: on" in text
            assert "budget detail row ids repeat across views: on" in text
            assert "inactive users/vendors only on /inactive lists: on" in text
            assert spike_statuses(url, 26)[-2:] == [200, 429]

    def test_connector_simulator_options_change_behaviour(self) -> None:
        command = [
            self.CONNECTOR,
            "simulator",
            "--companies",
            "1",
            "--records",
            "3",
            "--spike-limit",
            "3",
            "--no-compact-commitments",
        ]
        with serving(command) as (banner, url):
            text = "\n".join(banner)
            assert "3 per rolling 10 s" in text
            assert "commitments compact unless view=extended: off" in text
            assert spike_statuses(url, 4) == [200, 200, 200, 429]

    def test_module_takes_the_same_options(self) -> None:
        command = [sys.executable, "-m", "procore_sim", "--companies", "1", "--lenient"]
        with serving(command) as (banner, url):
            assert "100000 per 3600 s (fixed window), 1000 per rolling 10 s" in "\n".join(banner)
            assert set(spike_statuses(url, 30)) == {200}
