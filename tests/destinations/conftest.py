"""Fixtures for destination tests: a SQL URL per backend (SQLite always, PostgreSQL in CI)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from app.destinations.signing import generate_signing_secret
from tests.destinations.receiver import Receiver

POSTGRES_URL_VARIABLE = "CONNECTOR_TEST_POSTGRES_URL"


def _sql_backends() -> list[str]:
    # No PostgreSQL parametrisation at all without the variable; with it, PostgreSQL is required.
    return ["sqlite", "postgresql"] if os.environ.get(POSTGRES_URL_VARIABLE) else ["sqlite"]


def postgres_conninfo(url: str) -> str:
    """Returns a libpq URI for a SQLAlchemy-style PostgreSQL URL."""
    scheme, _, rest = url.partition("://")
    return "postgresql://" + rest if scheme.startswith("postgres") else url


def with_query(url: str, **params: str) -> str:
    """Returns the URL with extra query parameters appended."""
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{url}{'&' if '?' in url else '?'}{query}"


@pytest.fixture(params=_sql_backends())
async def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Yields a destination URL isolated to this test: a new SQLite file or PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/nested/warehouse.db"
        return
    base = os.environ[POSTGRES_URL_VARIABLE]
    schema = f"dest_test_{secrets.token_hex(6)}"
    # Connecting here makes an unreachable server fail the test instead of skipping it.
    async with await psycopg.AsyncConnection.connect(
        postgres_conninfo(base), autocommit=True, connect_timeout=10
    ) as conn:
        try:
            yield with_query(base, schema=schema)
        finally:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def signing_secret() -> str:
    """Returns a fresh Standard Webhooks secret."""
    return generate_signing_secret()


@pytest.fixture
def receiver(signing_secret: str) -> Iterator[Receiver]:
    """Yields a running loopback receiver that verifies signatures with signing_secret."""
    server = Receiver(signing_secret).start()
    try:
        yield server
    finally:
        server.stop()
