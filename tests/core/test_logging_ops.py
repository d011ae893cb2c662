"""Logs an operator can read: expected failures are one WARNING line with the reason (no
traceback), and health probes are not logged on every call."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import ADMIN_TOKEN, CALLBACK_SECRET, TEST_KEY, install_event, signed


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(companies=3, projects=1, records=3, seed=2)


class Served:
    """`connector serve` in a subprocess, writing JSON log lines to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from app.cli import main; main()",
                "serve",
                "--port",
                str(port),
            ],
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.admin = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )
        self.wait(lambda: httpx.get(f"{self.url}/livez").status_code == 200)

    def wait(self, check: Callable[[], bool], seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if check():
                    return
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.2)

    def events(self) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def last_run(self, company_id: int) -> dict[str, Any]:
        runs = self.admin.get("/admin/v1/syncs", params={"company_id": company_id}).json()
        return runs[0] if runs else {}

    def stop(self) -> None:
        self.admin.close()
        self.process.terminate()
        self.process.wait(30)
        self._out.close()


@pytest.fixture
def served(
    database_url: str, sim: SimulatorServer, sim_config: SimulatorConfig, tmp_path: Path
) -> Iterator[Served]:
    env = {
        **os.environ,
        "CONNECTOR_MODE": "test",
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_ENCRYPTION_KEYS": TEST_KEY,
        "CONNECTOR_CALLBACK_SECRET": CALLBACK_SECRET,
        "CONNECTOR_ADMIN_TOKENS": ADMIN_TOKEN,
        "CONNECTOR_PROCORE_API_URL": sim.url,
        "CONNECTOR_PROCORE_LOGIN_URL": sim.url,
        "CONNECTOR_CLIENT_ID": sim_config.client_id,
        "CONNECTOR_CLIENT_SECRET": sim_config.client_secret,
        "CONNECTOR_DESTINATION_URL": f"sqlite:///{tmp_path / 'destination.db'}",
        "CONNECTOR_DESTINATION_ROOT": str(tmp_path),
        "CONNECTOR_DISCOVERY_INTERVAL_SECONDS": "0",
        "CONNECTOR_SCHEDULER_TICK_SECONDS": "0.5",
        "CONNECTOR_STREAMS": "projects,rfis",
        "CONNECTOR_LOG_FORMAT": "json",
        "CONNECTOR_LOG_LEVEL": "INFO",
    }
    service = Served(env, tmp_path / "serve.log")
    try:
        yield service
    finally:
        service.stop()


def ended(served: Served, company_id: int) -> bool:
    return served.last_run(company_id).get("status") in ("succeeded", "failed", "cancelled")


class TestExpectedConditions:
    def test_are_one_warning_line_with_the_reason(
        self, served: Served, sim: SimulatorServer, tmp_path: Path
    ) -> None:
        not_installed, bad_credentials, refusing = sim.state.company_ids()
        sim.state.uninstall_company(not_installed)
        for company_id, extra in (
            (not_installed, {}),
            (bad_credentials, {"client_id": "unknown", "client_secret": "wrong-secret"}),
            (refusing, {}),
        ):
            body, headers = signed(install_event(company_id, **extra))
            answer = httpx.post(
                f"{served.url}/callbacks/installations", content=body, headers=headers
            )
            assert answer.status_code == 202
        for company_id in (not_installed, bad_credentials, refusing):
            served.wait(lambda cid=company_id: ended(served, cid))  # type: ignore[misc]
        # A destination that cannot be opened: its folder is a file.
        (tmp_path / "blocker").write_text("not a folder")
        patch = served.admin.patch(
            f"/admin/v1/installations/{refusing}",
            json={"destination_url": f"sqlite:///{tmp_path / 'blocker' / 'x.db'}"},
        )
        assert patch.status_code == 200, patch.text
        queued = served.admin.post(f"/admin/v1/installations/{refusing}/syncs").json()
        served.wait(
            lambda: (
                served.admin.get(f"/admin/v1/syncs/{queued['run_id']}").json()["status"] == "failed"
            )
        )

        events = served.events()
        assert "Traceback" not in served.log.read_text()
        assert [e for e in events if e["level"] in ("error", "critical")] == []
        failed = {
            e["company_id"]: e["error"]
            for e in events
            if e["event"] == "sync finished" and e["status"] == "failed"
        }
        assert all(
            e["level"] == "warning"
            for e in events
            if e["event"] == "sync finished" and e["status"] == "failed"
        )
        assert "not connected" in failed[not_installed]
        assert "credentials rejected" in failed[bad_credentials]
        assert "FileExistsError" in failed[refusing]


class TestProbes:
    def test_probes_are_not_logged_but_requests_are(self, served: Served) -> None:
        for _ in range(5):
            assert httpx.get(f"{served.url}/livez").status_code == 200
            httpx.get(f"{served.url}/readyz")
            served.admin.get("/metrics")
        assert served.admin.get("/admin/v1/installations?limit=7").status_code == 200
        served.wait(lambda: "limit=7" in served.log.read_text())
        text = served.log.read_text()
        assert "/livez" not in text and "/readyz" not in text and "/metrics" not in text
