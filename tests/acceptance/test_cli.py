"""The `connector` command line as an operator runs it (SPEC section 2)."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.acceptance.fake_procore import FakeProcore
from tests.acceptance.harness import Destination, Service, cli, event

BAD_VALUES = {
    "CONNECTOR_DATABASE_URL": "not a url at all",
    "CONNECTOR_ENCRYPTION_KEYS": "k1:too-short",
    "CONNECTOR_STREAMS": "rfis,no_such_stream",
    "CONNECTOR_SCHEDULE": "every blue moon",
    "CONNECTOR_PROCORE_API_URL": "ftp://example.com",
    "CONNECTOR_PROCORE_ENV": "mars",
    "CONNECTOR_DESTINATION_URL": "gopher://x/y",
    "CONNECTOR_CALLBACK_SECRET": "whsec_%%%notbase64",
}


def test_bad_env_values_stop_startup_with_one_line(
    env_for: Callable[..., dict[str, str]], workdir: Path
) -> None:
    def attempt(item: tuple[str, str]) -> tuple[str, int, str]:
        name, value = item
        done = cli(["serve", "--port", "1"], env_for(**{name: value}), workdir, timeout=30)
        return name, done.returncode, done.stderr + done.stdout

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, BAD_VALUES.items()))
    for name, code, output in results:
        assert code != 0, name
        lines = [line for line in output.strip().splitlines() if line.strip()]
        assert len(lines) == 1, (name, output)
        assert name in lines[0], (name, output)
        assert "Traceback" not in output
        assert BAD_VALUES[name] not in output or name != "CONNECTOR_ENCRYPTION_KEYS"


def test_missing_encryption_keys_refuses_to_start(
    env_for: Callable[..., dict[str, str]], workdir: Path
) -> None:
    env = env_for()
    env.pop("CONNECTOR_ENCRYPTION_KEYS")
    done = cli(["serve", "--port", "1"], env, workdir, timeout=30)
    assert done.returncode != 0
    assert "CONNECTOR_ENCRYPTION_KEYS" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_keys_generate_format(env_for: Callable[..., dict[str, str]], workdir: Path) -> None:
    done = cli(["keys", "generate"], env_for(), workdir)
    assert done.returncode == 0
    assert re.fullmatch(r"[A-Za-z0-9_.-]+:[A-Za-z0-9_-]{43}=?", done.stdout.strip())


def test_migrate_sync_exit_codes_and_key_rotation(
    fake: FakeProcore,
    env_for: Callable[..., dict[str, str]],
    start: Callable[[dict[str, str]], Service],
    workdir: Path,
    encryption_key: str,
) -> None:
    company = fake.add_company("CLI Co", projects=1)
    fake.add_records("rfis", company.id, company.projects[0], 120)
    fake.clients["own-id"] = "own-secret-abcdef"
    env = env_for(
        CONNECTOR_STREAMS="projects,rfis", CONNECTOR_CLIENT_ID="", CONNECTOR_CLIENT_SECRET=""
    )

    migrated = cli(["migrate"], env, workdir)
    assert migrated.returncode == 0, migrated.stderr
    assert cli(["migrate"], env, workdir).returncode == 0  # idempotent

    unknown = cli(["sync", "--company-id", "123456"], env, workdir)
    assert unknown.returncode != 0
    assert "Traceback" not in unknown.stderr

    service = start(env)
    body = event("created", company.id, client_id="own-id", client_secret="own-secret-abcdef")
    assert service.callback(body).status_code == 202
    assert service.wait_first_run(company.id)["status"] == "succeeded"
    service.stop()

    ok = cli(["sync", "--company-id", str(company.id)], env, workdir)
    assert ok.returncode == 0, ok.stderr
    assert "own-secret-abcdef" not in ok.stdout + ok.stderr

    new_key = cli(["keys", "generate"], env, workdir).stdout.strip()
    rotated = cli(
        ["keys", "rotate"],
        env | {"CONNECTOR_ENCRYPTION_KEYS": f"{new_key},{encryption_key}"},
        workdir,
    )
    assert rotated.returncode == 0, rotated.stderr
    only_new = env | {"CONNECTOR_ENCRYPTION_KEYS": new_key}
    again = cli(["sync", "--company-id", str(company.id), "--full-refresh"], only_new, workdir)
    assert again.returncode == 0, again.stderr  # the secret was re-encrypted under the new key

    fake.disconnect(company.id)
    failed = cli(["sync", "--company-id", str(company.id)], only_new, workdir)
    assert failed.returncode != 0
    dest = Destination(env["CONNECTOR_DESTINATION_URL"])
    assert len(dest.rows("rfis", company.id)) == 120


@pytest.mark.timeout(120)
def test_demo_runs_from_an_empty_directory(workdir: Path) -> None:
    from tests.acceptance.harness import base_env

    done = cli(["demo"], base_env(), workdir, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert (workdir / "data").exists()
    said = " ".join(done.stdout.split())  # rich wraps its lines at the terminal's width
    webhook = re.search(r"webhook: an RFI changed in Procore reached the destination (\S+) s", said)
    assert webhook is not None, done.stdout[-2000:]
    assert float(webhook.group(1)) >= 0  # a lag figure, whatever the machine's speed
