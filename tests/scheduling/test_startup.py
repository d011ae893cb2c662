"""`serve --no-migrate` before the migration has run waits, not ready, instead of crashing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.core.migrations import upgrade_to_head
from tests.factories import ADMIN_TOKEN, CALLBACK_SECRET, TEST_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: object, log: Path, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, f"the service exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


class TestFirstInstall:
    def test_waits_for_the_migration_then_becomes_ready(
        self, database_url: str, tmp_path: Path
    ) -> None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "CONNECTOR_MODE": "test",
            "CONNECTOR_DATABASE_URL": database_url,
            "CONNECTOR_ENCRYPTION_KEYS": TEST_KEY,
            "CONNECTOR_CALLBACK_SECRET": CALLBACK_SECRET,
            "CONNECTOR_ADMIN_TOKENS": ADMIN_TOKEN,
            "CONNECTOR_DISCOVERY_INTERVAL_SECONDS": "0",
            "CONNECTOR_SCHEDULER_TICK_SECONDS": "0.5",
            "CONNECTOR_LOG_FORMAT": "json",
        }
        log = tmp_path / "serve.log"
        command = [sys.executable, "-c", "from app.cli import main; main()"]
        serve = ["serve", "--no-migrate", "--port", str(port)]
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command, *serve], env=env, stdout=out, stderr=subprocess.STDOUT
            )
            try:
                wait_for(lambda: httpx.get(f"{url}/livez").status_code == 200, log, process, 60)
                for _ in range(3):  # not ready, and still up, probe after probe
                    answer = httpx.get(f"{url}/readyz")
                    assert answer.status_code == 503
                    assert answer.json()["checks"]["migrations"] != "ok"
                    time.sleep(0.5)
                assert process.poll() is None
                assert "waiting for `connector migrate`" in log.read_text()

                upgrade_to_head(database_url)  # the migration Job finishes
                wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, log, process, 60)
                installations = httpx.get(
                    f"{url}/admin/v1/installations",
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                )
                assert installations.status_code == 200 and installations.json() == []
            finally:
                process.terminate()
                process.wait(30)
        text = log.read_text()
        assert "Traceback" not in text
        assert "UndefinedTable" not in text and "no such table" not in text
