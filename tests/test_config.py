"""Start-up configuration: a bad value stops the command with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import SettingsError, load_settings
from tests.factories import TEST_KEY

BAD_VALUES = [
    ("CONNECTOR_DATABASE_URL", "not a url", "CONNECTOR_DATABASE_URL"),
    ("CONNECTOR_DATABASE_URL", "mysql://x@y/z", "CONNECTOR_DATABASE_URL"),
    ("CONNECTOR_ENCRYPTION_KEYS", "k1:dG9vLXNob3J0", "CONNECTOR_ENCRYPTION_KEYS"),
    ("CONNECTOR_ENCRYPTION_KEYS", "no-colon", "CONNECTOR_ENCRYPTION_KEYS"),
    ("CONNECTOR_STREAMS", "projects,nonsense", "CONNECTOR_STREAMS"),
    ("CONNECTOR_SCHEDULE", "every 5 fortnights", "CONNECTOR_SCHEDULE"),
    ("CONNECTOR_PROCORE_ENV", "moon", "CONNECTOR_PROCORE_ENV"),
    ("CONNECTOR_PROCORE_API_URL", "ftp://x", "CONNECTOR_PROCORE_API_URL"),
    ("CONNECTOR_CALLBACK_SECRET", "whsec_***", "CONNECTOR_CALLBACK_SECRET"),
    ("CONNECTOR_DESTINATION_URL", "ftp://host/dir", "CONNECTOR_DESTINATION_URL"),
]


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    clean["CONNECTOR_DATABASE_URL"] = f"sqlite:///{tmp_path / 'c.db'}"
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestSettings:
    @pytest.mark.parametrize(("variable", "value", "named"), BAD_VALUES)
    def test_bad_value_names_the_variable(self, variable: str, value: str, named: str) -> None:
        name = variable.removeprefix("CONNECTOR_").lower()
        with pytest.raises(SettingsError) as caught:
            load_settings(_env_file=None, **{name: value})
        message = str(caught.value)
        assert message.startswith(f"{named}:") and "\n" not in message
        if "KEYS" in variable or "SECRET" in variable:
            assert value.split(":")[-1] not in message.split(":", 1)[1]

    def test_procore_environment_picks_hosts(self) -> None:
        settings = load_settings(_env_file=None, procore_env="monthly_sandbox")
        assert settings.login_url == "https://login-sandbox-monthly.procore.com"
        assert settings.api_url == "https://api-monthly.procore.com"
        override = load_settings(_env_file=None, procore_api_url="http://127.0.0.1:9/")
        assert override.api_url == "http://127.0.0.1:9"

    def test_keys_parse_primary_first(self) -> None:
        second = TEST_KEY.replace("test1:", "old:")
        settings = load_settings(_env_file=None, encryption_keys=f"{TEST_KEY},{second}")
        assert [k.key_id for k in settings.keyring] == ["test1", "old"]
        assert "test1" in repr(settings.keyring[0]) and TEST_KEY.split(":")[1] not in repr(settings)


class TestCommandLine:
    def test_bad_variable_is_one_line_without_traceback(self, tmp_path: Path) -> None:
        result = run_cli(tmp_path, "migrate", CONNECTOR_STREAMS="rfis,bogus")
        assert result.returncode == 2
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "CONNECTOR_STREAMS" in lines[0] and "bogus" in lines[0]
        assert "Traceback" not in result.stderr + result.stdout

    def test_serve_refuses_to_start_without_keys(self, tmp_path: Path) -> None:
        result = run_cli(tmp_path, "serve", "--port", "0")
        assert result.returncode != 0
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "CONNECTOR_ENCRYPTION_KEYS" in lines[0]
        assert "Traceback" not in result.stderr + result.stdout

    def test_keys_generate_prints_a_usable_key(self, tmp_path: Path) -> None:
        result = run_cli(tmp_path, "keys", "generate")
        key = result.stdout.strip()
        assert result.returncode == 0
        assert [k.key_id for k in load_settings(_env_file=None, encryption_keys=key).keyring]

    def test_migrate_from_any_directory(self, tmp_path: Path) -> None:
        result = run_cli(tmp_path, "migrate")
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "c.db").exists()
