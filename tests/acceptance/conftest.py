"""Fixtures of the acceptance suite: the independent fake, keys, databases, service processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.acceptance.fake_procore import CLIENT_ID, CLIENT_SECRET, FakeProcore, FakeServer
from tests.acceptance.harness import (
    ADMIN_TOKEN,
    CALLBACK_SECRET,
    OTHER_TOKEN,
    REPO,
    Service,
    base_env,
    cli,
    create_pg_database,
    drop_pg_database,
)


@pytest.fixture(scope="session")
def encryption_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A key made by `connector keys generate`, as an operator would."""
    done = cli(["keys", "generate"], base_env(), tmp_path_factory.mktemp("keys"))
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1].strip()
    assert ":" in line, done.stdout
    return line


@pytest.fixture
def fake() -> Iterator[FakeProcore]:
    with FakeServer(FakeProcore()) as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    assert path.resolve() != REPO
    return path


@pytest.fixture
def pg_url() -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        made.append(create_pg_database())
        return made[-1]

    yield make
    for url in made:
        drop_pg_database(url)


@pytest.fixture
def env_for(fake: FakeProcore, workdir: Path, encryption_key: str) -> Callable[..., dict[str, str]]:
    """SPEC section 2 variables only: the fake's hosts, keys, secrets, tokens, destination."""

    def make(**extra: str) -> dict[str, str]:
        values = {
            "CONNECTOR_DATABASE_URL": f"sqlite:///{workdir / 'connector.db'}",
            "CONNECTOR_PROCORE_API_URL": fake.url,
            "CONNECTOR_PROCORE_LOGIN_URL": fake.url,
            "CONNECTOR_ENCRYPTION_KEYS": encryption_key,
            "CONNECTOR_CALLBACK_SECRET": CALLBACK_SECRET,
            "CONNECTOR_ADMIN_TOKENS": f"{OTHER_TOKEN},{ADMIN_TOKEN}",
            "CONNECTOR_CLIENT_ID": CLIENT_ID,
            "CONNECTOR_CLIENT_SECRET": CLIENT_SECRET,
            "CONNECTOR_DESTINATION_URL": f"sqlite:///{workdir / 'dest.db'}",
            "CONNECTOR_SCHEDULE": "every 1h",
            "CONNECTOR_DESTINATION_ROOT": str(workdir),
            "CONNECTOR_DESTINATION_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        }
        values.update(extra)
        return base_env(**{k: v for k, v in values.items() if v is not None})

    return make


@pytest.fixture
def start(workdir: Path) -> Iterator[Callable[[dict[str, str]], Service]]:
    started: list[Service] = []

    def run(env: dict[str, str]) -> Service:
        started.append(Service(env, workdir))
        return started[-1]

    yield run
    for service in started:
        service.stop()
