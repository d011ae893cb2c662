"""Named tokens with roles (SPEC sections 2 and 4): who may do what, over real HTTP.

Also: weak tokens refused at start-up, the bearer checked before any body is read,
/metrics naming no company without a token, and `serve --admin-port` keeping the private
endpoints off the public port.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.config import SettingsError, load_settings
from app.core.settings import read_settings
from app.main import bind_socket, create_app
from procore_sim.server import SimulatorServer
from tests.console.helpers import OPERATOR_TOKEN, ROLE_TOKENS, VIEWER_TOKEN
from tests.factories import ADMIN_TOKEN, RunningService, install_event, make_settings, signed

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"admin_tokens": ROLE_TOKENS}


def as_role(service: RunningService, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=service.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def installed(service: RunningService, sim: SimulatorServer) -> int:
    company_id = sim.state.company_ids()[0]
    run = service.install_and_sync(company_id)
    assert run["status"] == "succeeded", run
    return company_id


class TestRoles:
    def test_viewer_reads_everything_and_changes_nothing(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = installed(service, sim)
        run_id = service.latest_run_id(company_id)
        with as_role(service, VIEWER_TOKEN) as viewer:
            for path in (
                "/admin/v1/installations",
                f"/admin/v1/installations/{company_id}",
                "/admin/v1/syncs",
                f"/admin/v1/syncs/{run_id}",
                "/admin/v1/audit",
            ):
                assert viewer.get(path).status_code == 200, path
            refused = [
                viewer.post(f"/admin/v1/installations/{company_id}/syncs"),
                viewer.post(f"/admin/v1/syncs/{run_id}/cancel"),
                viewer.patch(f"/admin/v1/installations/{company_id}", json={"paused": True}),
                viewer.patch(
                    f"/admin/v1/installations/{company_id}", json={"schedule": "every 2h"}
                ),
                viewer.put(
                    f"/admin/v1/installations/{company_id}/credentials",
                    json={"client_id": "a", "client_secret": "b"},
                ),
                viewer.post(f"/admin/v1/installations/{company_id}/destination/signing-secret"),
                viewer.delete(f"/admin/v1/installations/{company_id}"),
            ]
        for answer in refused:
            assert answer.status_code == 403, answer.text
            error = answer.json()["error"]
            assert error["code"] == "forbidden" and "viewer" in error["message"]
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert inst["paused"] is False and inst["schedule"] == "every 1h"
        assert inst["status"] == "active"
        assert (
            service.admin.get("/admin/v1/syncs", params={"company_id": company_id}).json()[0][
                "run_id"
            ]
            == run_id
        )  # no run was queued

    def test_operator_triggers_cancels_and_pauses_but_configures_nothing(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = installed(service, sim)
        with as_role(service, OPERATOR_TOKEN) as operator:
            queued = operator.post(f"/admin/v1/installations/{company_id}/syncs")
            assert queued.status_code == 202, queued.text
            service.wait_for_run(queued.json()["run_id"])
            paused = operator.patch(f"/admin/v1/installations/{company_id}", json={"paused": True})
            assert paused.status_code == 200 and paused.json()["paused"] is True
            resumed = operator.patch(
                f"/admin/v1/installations/{company_id}", json={"paused": False}
            )
            assert resumed.status_code == 200 and resumed.json()["paused"] is False
            mixed = operator.patch(
                f"/admin/v1/installations/{company_id}",
                json={"paused": True, "schedule": "every 2h"},
            )
            destination = operator.patch(
                f"/admin/v1/installations/{company_id}",
                json={"destination_url": "sqlite:///elsewhere.db"},
            )
            uninstall = operator.delete(f"/admin/v1/installations/{company_id}")
            rotate = operator.post(
                f"/admin/v1/installations/{company_id}/destination/signing-secret"
            )
        for answer in (mixed, destination, uninstall, rotate):
            assert answer.status_code == 403, answer.text
            assert "operator" in answer.json()["error"]["message"]
        inst = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert inst["status"] == "active" and inst["paused"] is False
        assert inst["schedule"] == "every 1h"

    def test_admin_may_do_everything(self, service: RunningService, sim: SimulatorServer) -> None:
        company_id = installed(service, sim)
        changed = service.admin.patch(
            f"/admin/v1/installations/{company_id}", json={"schedule": "every 2h"}
        )
        assert changed.status_code == 200 and changed.json()["schedule"] == "every 2h"
        gone = service.admin.delete(f"/admin/v1/installations/{company_id}")
        assert gone.status_code == 200 and gone.json()["status"] == "uninstalled"


class TestAuthenticationBeforeTheBody:
    @pytest.fixture
    def service_overrides(self) -> dict[str, Any]:
        return {"admin_tokens": ROLE_TOKENS, "max_body_bytes": 2048}

    def test_bad_token_with_huge_or_malformed_body_is_401(self, service: RunningService) -> None:
        bad = {"Authorization": "Bearer not-a-token", "content-type": "application/json"}
        huge = service.anonymous.patch(
            "/admin/v1/installations/5", content=b"{" + b" " * 100_000, headers=bad
        )
        assert huge.status_code == 401, huge.text
        declared = service.anonymous.put(
            "/admin/v1/installations/5/credentials",
            content=b"x" * 5000,
            headers={**bad, "content-length": "5000"},
        )
        assert declared.status_code == 401
        malformed = service.anonymous.post(
            "/admin/v1/installations/5/syncs", content=b"{not json", headers=bad
        )
        assert malformed.status_code == 401
        assert malformed.json()["error"]["code"] == "unauthorized"
        # With a good token the same bodies are judged on their merits.
        good = {"Authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json"}
        assert (
            service.anonymous.patch(
                "/admin/v1/installations/5", content=b"{" + b" " * 100_000, headers=good
            ).status_code
            == 413
        )
        assert (
            service.anonymous.post(
                "/admin/v1/installations/5/syncs", content=b"{not json", headers=good
            ).status_code
            == 400
        )


def env_placeholders() -> list[str]:
    """The CONNECTOR_ADMIN_TOKENS values the deploy/ examples ship."""
    found: list[str] = []
    for path in (REPO / "deploy").rglob("*"):
        if path.is_file() and path.suffix in ("", ".example", ".yaml", ".yml", ".env"):
            for match in re.finditer(r"CONNECTOR_ADMIN_TOKENS[=:]\s*(\S+)", path.read_text()):
                found.append(match.group(1).strip("'\""))
    return found


class TestWeakTokensRefused:
    def test_every_placeholder_in_deploy_is_refused_with_one_line(self) -> None:
        placeholders = env_placeholders()
        assert len(placeholders) >= 2, placeholders  # compose's env file and the k8s Secret
        for value in placeholders:
            with pytest.raises(SettingsError) as caught:
                read_settings(_env_file=None, admin_tokens=value)
            message = str(caught.value)
            assert message.startswith("CONNECTOR_ADMIN_TOKENS: ") and "\n" not in message
            for secret_part in value.split(","):
                assert secret_part.rpartition(":")[2] not in message

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            ("x", "shorter than 32"),
            ("a" * 40, "placeholder"),
            ("change-me-admin-token-5b1c2d9e7f30a4c8", "placeholder"),
            ("ops:root:" + "9f8e7d6c5b4a3210" * 2, "ROLE must be viewer, operator or admin"),
            ("ops:admin:short", "shorter than 32"),
            ("bad name:admin:" + "9f8e7d6c5b4a3210" * 2, "NAME:ROLE:TOKEN"),
            (f"a:admin:{ADMIN_TOKEN},a:viewer:{VIEWER_TOKEN}", "appears twice"),
            (f"a:admin:{ADMIN_TOKEN},b:viewer:{ADMIN_TOKEN}", "appears twice"),
        ],
    )
    def test_bad_entries_stop_start_up(self, value: str, reason: str) -> None:
        with pytest.raises(SettingsError, match=reason) as caught:
            load_settings(_env_file=None, admin_tokens=value)
        assert str(caught.value).startswith("CONNECTOR_ADMIN_TOKENS: entry")

    def test_named_and_bare_tokens_parse(self) -> None:
        settings = read_settings(_env_file=None, admin_tokens=",".join(ROLE_TOKENS))
        named = [(t.name, t.role.value) for t in settings.admin_tokens]
        assert named == [("token-1", "admin"), ("support", "viewer"), ("oncall", "operator")]
        assert VIEWER_TOKEN not in repr(settings.admin_tokens)


def metric_lines(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(name)]


class TestMetricsNameNoCompany:
    def test_label_free_without_a_token_per_company_with_one(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = installed(service, sim)
        anonymous = service.anonymous.get("/metrics").text
        assert str(company_id) not in anonymous and "company_id" not in anonymous
        # Totals are still there, summed over companies.
        runs = metric_lines(anonymous, 'connector_sync_runs_total{status="succeeded"}')
        assert runs and float(runs[0].split()[-1]) >= 1
        wrong = service.anonymous.get("/metrics", headers={"Authorization": "Bearer nope"}).text
        assert "company_id" not in wrong
        with as_role(service, VIEWER_TOKEN) as viewer:
            named = viewer.get("/metrics").text
        assert f'company_id="{company_id}"' in named
        assert metric_lines(named, "connector_sync_last_success_timestamp_seconds{")


class TwoListeners:
    """The app on a public and an admin socket, as `serve --admin-port` runs it."""

    def __init__(self, **settings: Any) -> None:
        self.public = bind_socket("127.0.0.1", 0)
        self.private = bind_socket("127.0.0.1", 0)
        admin_port = self.private.getsockname()[1]
        app = create_app(make_settings(**settings), admin_port=admin_port)
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.public, self.private]}, daemon=True
        )
        self.public_url = f"http://127.0.0.1:{self.public.getsockname()[1]}"
        self.admin_url = f"http://127.0.0.1:{admin_port}"

    def __enter__(self) -> TwoListeners:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class TestAdminPort:
    def test_private_endpoints_only_on_the_admin_port(self, database_url: str) -> None:
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with TwoListeners(database_url=database_url, procore_api_url="http://127.0.0.1:9") as both:
            public = httpx.Client(base_url=both.public_url, timeout=30)
            private = httpx.Client(base_url=both.admin_url, timeout=30)
            for path in ("/admin/v1/installations", "/metrics", "/console/sign-in", "/docs"):
                answer = public.get(path, headers=auth)
                assert answer.status_code == 404, path
                assert answer.json()["error"]["code"] == "not_found"
                assert private.get(path, headers=auth).status_code == 200, path
            for path in ("/livez", "/readyz"):
                assert public.get(path).status_code in (200, 503), path
                assert private.get(path).status_code in (200, 503), path
            body, headers = signed(install_event(7))
            assert (
                public.post("/callbacks/installations", content=body, headers=headers).status_code
                == 202
            )
            body, headers = signed(install_event(8))
            refused = private.post("/callbacks/installations", content=body, headers=headers)
            assert refused.status_code == 404
            listed = private.get("/admin/v1/installations", headers=auth).json()
            assert [inst["company_id"] for inst in listed] == [7]
            public.close()
            private.close()

    def test_without_admin_port_everything_is_on_one_port(self, database_url: str) -> None:
        with RunningService(make_settings(database_url=database_url)) as service:
            assert service.admin.get("/admin/v1/installations").status_code == 200
            assert service.anonymous.get("/console/sign-in").status_code == 200
            assert service.callback(install_event(9)).status_code == 202


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestServeCommand:
    def test_serve_admin_port_in_a_child_process(self, database_url: str, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
        env.update(
            PYTHONPATH=str(REPO),
            CONNECTOR_MODE="test",
            CONNECTOR_DATABASE_URL=database_url,
            CONNECTOR_ADMIN_TOKENS=",".join(ROLE_TOKENS),
            CONNECTOR_PROCORE_API_URL="http://127.0.0.1:9",
            CONNECTOR_PROCORE_LOGIN_URL="http://127.0.0.1:9",
            CONNECTOR_DISCOVERY_INTERVAL_SECONDS="0",
            CONNECTOR_DESTINATION_URL=f"sqlite:///{tmp_path / 'dest.db'}",
            CONNECTOR_DESTINATION_ROOT=str(tmp_path),
        )
        same = subprocess.run(
            [sys.executable, "-m", "app.cli", "serve", "--port", "8123", "--admin-port", "8123"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert same.returncode != 0 and "--admin-port must differ" in same.stderr
        port, admin_port = free_port(), free_port()
        log = (tmp_path / "serve.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "serve",
                "--port",
                str(port),
                "--admin-port",
                str(admin_port),
            ],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            public = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
            private = httpx.Client(
                base_url=f"http://127.0.0.1:{admin_port}",
                headers={"Authorization": f"Bearer {VIEWER_TOKEN}"},
                timeout=5,
            )
            deadline = time.monotonic() + 40
            while True:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    if private.get("/livez").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
            assert public.get("/livez").status_code == 200
            assert public.get("/admin/v1/installations").status_code == 404
            assert public.get("/metrics").status_code == 404
            assert private.get("/admin/v1/installations").status_code == 200
            assert private.get("/metrics").status_code == 200
            public.close()
            private.close()
        finally:
            proc.terminate()
            # uvicorn re-raises the SIGTERM it handled once its shutdown is done.
            assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
            log.close()
        assert "service stopped" in (tmp_path / "serve.log").read_text()
