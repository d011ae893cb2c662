"""The SQL destination's engine: SQLite confined to the allowed folder, in WAL mode with a busy
timeout; PostgreSQL pinned to the address the policy checked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core import json_codec
from app.destinations.base import DestinationError, InvalidDestinationURL
from app.destinations.policy import DestinationPolicy, resolve_allowed
from app.destinations.urls import SQLTarget

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the customer's queries) run while a sync writes; the busy timeout
    # makes concurrent writers wait for each other instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _make_parent_directory(database: str) -> None:
    Path(database).parent.mkdir(parents=True, exist_ok=True)


async def create_sql_engine(target: SQLTarget, policy: DestinationPolicy) -> AsyncEngine:
    """An engine for the target; DestinationError when the policy refuses the SQLite path."""
    url = target.url
    if target.dialect == "sqlite":
        try:
            path = policy.confine(target.sqlite_path, "sqlite file")
        except InvalidDestinationURL as error:
            raise DestinationError(str(error).removeprefix("destination_url: ")) from None
        await asyncio.to_thread(_make_parent_directory, str(path))
        engine = create_async_engine(
            url.set(database=str(path)),
            json_serializer=json_codec.dumps,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    # Connect to the address that was checked: libpq uses hostaddr for the connection and the
    # host name only for TLS verification, so a later DNS answer cannot move it.
    assert url.host is not None  # checked when the URL was parsed
    address = await resolve_allowed(policy, url.host, url.port or 5432)
    return create_async_engine(
        url,
        json_serializer=json_codec.dumps,
        pool_pre_ping=True,
        connect_args={"hostaddr": str(address)},
    )
