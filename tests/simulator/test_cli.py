"""`python -m procore_sim` serves on the given port and prints the client credentials."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

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
            8765, 2, 3, 50, 1)

    def test_module_serves_and_prints_credentials(self) -> None:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "procore_sim", "--port", str(port), "--companies", "1",
             "--records", "5", "--client-id", "cli-id", "--client-secret", "cli-secret"],
            stdout=subprocess.PIPE, text=True)
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
                "clients": [{"client_id": "cli-id", "client_secret": "cli-secret"}]}
            companies = httpx.get(f"http://127.0.0.1:{port}/_sim/companies").json()
            assert len(companies["companies"]) == 1
        finally:
            process.terminate()
            process.wait(10)
