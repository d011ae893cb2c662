"""The `connector` command line as an operator meets it: help, roles, migrate, sync, secrets,
and the operator commands that read and change the service database like the admin API."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import typer
from typer.testing import CliRunner

from app.cli import cli
from app.core.migrations import head_revision, revisions_after, upgrade_to_head
from app.core.settings import Settings
from procore_sim.server import SimulatorServer
from tests.factories import TEST_KEY, RunningService

ALL_REVISIONS = [r.revision for r in revisions_after(None)]


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """Commands configure logging onto the runner's stderr; later tests must not write there."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.reset_defaults()


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    """What the CLI reads: the test database and the test key (nothing from a .env file)."""
    return {
        "CONNECTOR_MODE": "test",
        "CONNECTOR_DATABASE_URL": database_url,
        "CONNECTOR_ENCRYPTION_KEYS": TEST_KEY,
    }


def invoke(args: list[str], env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, args, env=env or {})


def commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every command and sub-command of a (Typer's own) click group."""
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if hasattr(command, "commands"):
            yield from commands(command, f"{prefix}{name} ")


class TestHelp:
    @pytest.mark.parametrize(
        "args", [[], ["serve"], ["migrate"], ["runs", "trigger"], ["secrets", "generate"]]
    )
    def test_dash_h_is_help(self, args: list[str]) -> None:
        short, long = invoke([*args, "-h"]), invoke([*args, "--help"])
        assert short.exit_code == long.exit_code == 0
        assert short.output == long.output and "Usage" in short.output

    def test_every_option_of_every_command_has_a_description(self) -> None:
        root: Any = typer.main.get_command(cli)
        missing = [
            f"{name} {param.name}"
            for name, command in commands(root)
            for param in command.params
            if param.param_type_name == "option" and not (param.help or "").strip()
        ]
        assert missing == []
        simulator = root.commands["simulator"]
        assert {p.name for p in simulator.params} >= {"port", "companies", "records", "seed"}

    def test_role_is_a_listed_choice(self) -> None:
        assert "all|api|worker" in invoke(["serve", "--help"]).output
        refused = invoke(["serve", "--role", "scheduler"])
        assert refused.exit_code == 2
        assert "scheduler" in refused.output and "all" in refused.output

    def test_version(self) -> None:
        answer = invoke(["--version"])
        assert answer.exit_code == 0
        assert re.fullmatch(r"connector \d+\.\d+\.\d+\S*\n", answer.output)


class TestMigrate:
    def test_says_what_it_applied_then_that_nothing_was_needed(self, env: dict[str, str]) -> None:
        behind = invoke(["migrate", "current"], env)
        assert behind.exit_code == 1
        assert f"head is {head_revision()}" in behind.output
        assert all(revision in behind.output for revision in ALL_REVISIONS)

        first = invoke(["migrate"], env)
        assert first.exit_code == 0, first.output
        assert f"applied {len(ALL_REVISIONS)} migration(s)" in first.output
        assert all(revision in first.output for revision in ALL_REVISIONS)

        again = invoke(["migrate"], env)
        assert again.exit_code == 0
        assert again.output.startswith("no migration needed")
        current = invoke(["migrate", "current"], env)
        assert (current.exit_code, current.output) == (0, f"{head_revision()} (head)\n")

    def test_applies_only_what_is_missing(self, env: dict[str, str]) -> None:
        from alembic import command

        from app.core.migrations import alembic_config

        command.upgrade(alembic_config(env["CONNECTOR_DATABASE_URL"]), ALL_REVISIONS[-2])
        done = invoke(["migrate"], env)
        assert done.exit_code == 0
        assert "applied 1 migration(s)" in done.output and ALL_REVISIONS[-1] in done.output


class TestSyncNeverMigratesSilently:
    def test_refuses_an_unmigrated_database_when_told_not_to_migrate(
        self, env: dict[str, str]
    ) -> None:
        refused = invoke(["sync", "--company-id", "5", "--no-migrate"], env)
        assert refused.exit_code == 2
        assert "connector migrate" in refused.output and "--no-migrate" in refused.output
        assert invoke(["migrate", "current"], env).exit_code == 1  # still nothing applied

    def test_migrates_by_default_and_says_so(self, env: dict[str, str]) -> None:
        asked = invoke(["sync", "--company-id", "5"], env)
        assert f"applied {len(ALL_REVISIONS)} migration(s)" in asked.output
        assert "no installation for company 5" in asked.output
        assert invoke(["migrate", "current"], env).exit_code == 0


class TestSecretsGenerate:
    def test_prints_a_callback_secret_and_a_strong_admin_token(self) -> None:
        first, second = invoke(["secrets", "generate"]), invoke(["secrets", "generate"])
        assert first.exit_code == 0
        values = dict(line.split("=", 1) for line in first.output.splitlines())
        assert set(values) == {"CONNECTOR_CALLBACK_SECRET", "CONNECTOR_ADMIN_TOKENS"}
        assert values["CONNECTOR_CALLBACK_SECRET"].startswith("whsec_")
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            callback_secret=values["CONNECTOR_CALLBACK_SECRET"],
        )
        assert settings.callback_secret is not None
        token = values["CONNECTOR_ADMIN_TOKENS"]
        assert len(token) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
        assert first.output != second.output

    def test_only_one_value_or_a_named_token(self) -> None:
        only = invoke(["secrets", "generate", "--only", "callback-secret"]).output.strip()
        assert only.startswith("whsec_") and "\n" not in only
        named = invoke(["secrets", "generate", "--only", "admin-token", "--name", "ci"])
        assert re.fullmatch(r"ci:admin:[A-Za-z0-9_-]{43}\n", named.output)
        viewer = invoke(["secrets", "generate", "--name", "ro", "--role", "viewer"]).output
        assert "CONNECTOR_ADMIN_TOKENS=ro:viewer:" in viewer
        assert invoke(["secrets", "generate", "--role", "root"]).exit_code == 2


def service_env(service: RunningService) -> dict[str, str]:
    """The CLI's environment for the running service's database and app credentials."""
    settings = service.settings
    assert settings.client_id is not None and settings.client_secret is not None
    return {
        "CONNECTOR_MODE": "test",
        "CONNECTOR_DATABASE_URL": settings.database_url,
        "CONNECTOR_ENCRYPTION_KEYS": TEST_KEY,
        "CONNECTOR_CLIENT_ID": settings.client_id,
        "CONNECTOR_CLIENT_SECRET": settings.client_secret.get_secret_value(),
        "CONNECTOR_DESTINATION_URL": settings.destination_url.get_secret_value(),
        "CONNECTOR_DESTINATION_ROOT": str(settings.destination_root),
        "CONNECTOR_DESTINATION_ALLOWED_NETWORKS": "127.0.0.0/8",
    }


class TestOperatorCommands:
    def test_list_show_and_runs_match_the_admin_api(
        self, service: RunningService, sim: SimulatorServer, env: dict[str, str]
    ) -> None:
        env = service_env(service)
        company_id = sim.state.company_ids()[0]
        run = service.install_and_sync(company_id)
        listed = invoke(["installations", "list", "--json"], env)
        assert listed.exit_code == 0, listed.output
        assert json.loads(listed.output) == service.admin.get("/admin/v1/installations").json()

        shown = invoke(["installations", "show", str(company_id), "--json"], env)
        api = service.admin.get(f"/admin/v1/installations/{company_id}").json()
        assert json.loads(shown.output) == api

        runs = invoke(["runs", "list", "--company-id", str(company_id), "--json"], env)
        api_runs = service.admin.get("/admin/v1/syncs", params={"company_id": company_id})
        assert json.loads(runs.output) == api_runs.json()
        one = invoke(["runs", "show", run["run_id"], "--json"], env)
        assert (
            json.loads(one.output) == service.admin.get(f"/admin/v1/syncs/{run['run_id']}").json()
        )

        table = invoke(["installations", "list"], env).output
        assert str(company_id) in table and "active" in table
        assert run["run_id"] in invoke(["runs", "list"], env).output

    def test_trigger_queues_a_run_the_service_executes(
        self, service: RunningService, sim: SimulatorServer, env: dict[str, str]
    ) -> None:
        env = service_env(service)
        company_id = sim.state.company_ids()[1]
        service.install_and_sync(company_id)
        done = invoke(["runs", "trigger", str(company_id), "--full-refresh", "--wait", "90"], env)
        assert done.exit_code == 0, done.output
        run_id = re.search(r"queued run (\S+)", done.output)
        assert run_id is not None
        run = service.admin.get(f"/admin/v1/syncs/{run_id.group(1)}").json()
        assert (run["status"], run["trigger"], run["full_refresh"]) == ("succeeded", "cli", True)

    def test_unknown_ids_are_one_line_and_exit_1(
        self, service: RunningService, env: dict[str, str]
    ) -> None:
        for args in (
            ["installations", "show", "999"],
            ["runs", "trigger", "999"],
            ["runs", "show", "no-such-run"],
        ):
            answer = invoke(args, env)
            assert answer.exit_code == 1, args
            assert answer.output.count("\n") == 1 and answer.output.startswith("error: ")


class TestWorkerPort:
    def test_a_worker_binds_no_public_port_by_default(
        self, database_url: str, env: dict[str, str], tmp_path: Path
    ) -> None:
        upgrade_to_head(database_url)
        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as log:
            serve = ["serve", "--role", "worker", "--no-migrate"]
            process = subprocess.Popen(
                [sys.executable, "-c", "from app.cli import main; main()", *serve],
                env={**os.environ, **env, "CONNECTOR_LOG_FORMAT": "json"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 60
                while not (
                    found := re.search(r"running on http://([\d.]+):(\d+)", log_path.read_text())
                ):
                    assert process.poll() is None, log_path.read_text()
                    assert time.monotonic() < deadline, log_path.read_text()
                    time.sleep(0.1)
                host, port = found.group(1), int(found.group(2))
                assert host == "127.0.0.1" and port not in (0, 8000)
                assert httpx.get(f"http://{host}:{port}/livez").json() == {"status": "ok"}
            finally:
                process.terminate()
                process.wait(30)


class TestStartUpCost:
    def test_status_choices_are_the_models_values(self) -> None:
        from app.cli_operator import InstallationStatusChoice, RunStatusChoice
        from app.installations.models import InstallationStatus
        from app.runs.models import RunStatus

        assert [c.value for c in InstallationStatusChoice] == [s.value for s in InstallationStatus]
        assert [c.value for c in RunStatusChoice] == [s.value for s in RunStatus]

    def test_starting_the_cli_loads_no_operator_service(self) -> None:
        code = "import sys, app.cli; print(sorted(m for m in sys.modules if m.startswith(("
        code += "'app.admin', 'app.runtime', 'app.runs.models', 'app.installations.models'))))"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "[]"
