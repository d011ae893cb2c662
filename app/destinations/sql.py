"""SQL destination: one table per stream, upserted on (company_id, id) (SPEC section 6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import column as sa_column
from sqlalchemy import delete as sa_delete
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import table as sa_table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.schema import CreateSchema

from app.core import json_codec
from app.core.logging import scrub_text
from app.destinations.base import Destination, DestinationError
from app.destinations.records import (
    DestinationRecord,
    check_run_id,
    check_stream_name,
    ensure_utc,
    unique_last,
)
from app.destinations.urls import SQLTarget, check_table_prefix, redact_destination_url

CONTRACT_COLUMNS = frozenset(
    {"company_id", "id", "project_id", "updated_at", "deleted_at", "synced_at", "data"}
)
MAX_IDENTIFIER_LENGTH = 63  # PostgreSQL truncates longer names silently; refuse them instead.
SQLITE_BUSY_TIMEOUT_MS = 30_000
_UPDATED_ON_CONFLICT = ("project_id", "updated_at", "deleted_at", "synced_at", "data")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the customer's queries) run while a sync writes; the busy timeout
    # makes concurrent writers wait for each other instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _make_parent_directory(database: str) -> None:
    Path(database).parent.mkdir(parents=True, exist_ok=True)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class SQLDestination(Destination):
    """Upserts records into one table per stream through SQLAlchemy's async engine."""

    def __init__(self, target: SQLTarget, *, table_prefix: str = "", chunk_size: int = 1000):
        self._target = target
        # The URL's own ?table_prefix= is the more specific choice, so it wins over the default.
        self._prefix = target.table_prefix or check_table_prefix(table_prefix)
        self._chunk_size = chunk_size
        self._engine: AsyncEngine | None = None
        self._metadata = MetaData(schema=target.schema)
        self._ready: dict[str, Table] = {}
        self._lock = asyncio.Lock()

    @property
    def dialect(self) -> str:
        """Returns 'sqlite' or 'postgresql'."""
        return self._target.dialect

    def table_name(self, stream: str) -> str:
        """Returns the table name of a stream (prefix + stream name)."""
        name = self._prefix + check_stream_name(stream)
        if len(name) > MAX_IDENTIFIER_LENGTH:
            raise ValueError(f"table name {name!r} is longer than {MAX_IDENTIFIER_LENGTH}")
        return name

    async def open(self) -> None:
        """Creates the engine, checks the connection and creates the schema if asked for one."""
        if self._engine is not None:
            return
        url = self._target.url
        if self._target.dialect == "sqlite":
            assert url.database is not None  # checked when the URL was parsed
            await asyncio.to_thread(_make_parent_directory, url.database)
            engine = create_async_engine(
                url,
                json_serializer=json_codec.dumps,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            )
            event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        else:
            engine = create_async_engine(url, json_serializer=json_codec.dumps, pool_pre_ping=True)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("SELECT 1"))
                if self._target.schema is not None:
                    await conn.run_sync(create_schema_if_missing, self._target.schema)
        except DBAPIError as error:
            await engine.dispose()
            raise DestinationError(
                f"cannot open {self.describe()}: {type(error.orig).__name__}: {error.orig}"
            ) from error
        self._engine = engine

    def _engine_or_fail(self) -> AsyncEngine:
        if self._engine is None:
            raise DestinationError("the SQL destination is not open; call open() first")
        return self._engine

    def _define_table(self, name: str) -> Table:
        existing = self._metadata.tables.get(
            name if self._target.schema is None else f"{self._target.schema}.{name}"
        )
        if existing is not None:
            return existing
        return Table(
            name,
            self._metadata,
            Column("company_id", BigInteger, nullable=False, autoincrement=False),
            Column("id", BigInteger, nullable=False, autoincrement=False),
            Column("project_id", BigInteger, nullable=True),
            Column("updated_at", DateTime(timezone=True), nullable=True),
            Column("deleted_at", DateTime(timezone=True), nullable=True),
            Column("synced_at", DateTime(timezone=True), nullable=False),
            Column("data", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
            PrimaryKeyConstraint("company_id", "id"),
        )

    def _create_or_check(self, conn: Connection, table: Table) -> None:
        inspector = inspect(conn)
        if not inspector.has_table(table.name, schema=table.schema):
            table.create(conn)
            return
        columns = {column["name"] for column in inspector.get_columns(table.name, table.schema)}
        missing = sorted(CONTRACT_COLUMNS - columns)
        if missing:
            raise DestinationError(
                f"table {table.name!r} exists but lacks the connector's columns "
                f"{', '.join(missing)}; choose another table_prefix or schema"
            )

    async def ensure_table(self, stream: str) -> Table:
        """Returns the stream's table, creating it the first time the stream is written."""
        name = self.table_name(stream)
        table = self._ready.get(name)
        if table is not None:
            return table
        engine = self._engine_or_fail()
        async with self._lock:
            table = self._ready.get(name)
            if table is not None:
                return table
            table = self._define_table(name)
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(self._create_or_check, table)
            except (IntegrityError, OperationalError, ProgrammingError):
                # Another process created the same table between our check and our CREATE.
                async with engine.begin() as conn:
                    await conn.run_sync(self._create_or_check, table)
            self._ready[name] = table
            return table

    async def purge(self, company_id: int) -> dict[str, int]:
        """Deletes the company's rows from every contract table of this destination."""
        engine = self._engine_or_fail()
        async with self._translated("purging a company"), engine.begin() as conn:
            return await conn.run_sync(self._delete_company, company_id)

    @asynccontextmanager
    async def _translated(self, action: str) -> AsyncIterator[None]:
        """Turns the database's errors into DestinationError, so a run reports the destination
        (a missing privilege, a value the column refuses) instead of crashing on them."""
        try:
            yield
        except DBAPIError as error:
            reason = str(error.orig or error).strip().splitlines()[0][:300]
            raise DestinationError(
                f"{self.describe()}: {action} failed: {type(error.orig or error).__name__}: "
                f"{scrub_text(reason)}"
            ) from None

    def _delete_company(self, conn: Connection, company_id: int) -> dict[str, int]:
        schema, prefix = self._target.schema, self._target.table_prefix
        inspector = sa_inspect(conn)
        deleted: dict[str, int] = {}
        for name in sorted(inspector.get_table_names(schema=schema)):
            columns = {column["name"] for column in inspector.get_columns(name, schema=schema)}
            # Only tables this destination made (prefix and contract columns); others are
            # another application's.
            if not name.startswith(prefix) or not columns >= CONTRACT_COLUMNS:
                continue
            table = sa_table(name, sa_column("company_id"), schema=schema)
            result = conn.execute(sa_delete(table).where(table.c.company_id == company_id))
            deleted[name[len(prefix) :]] = int(result.rowcount or 0)
        return deleted

    def _timestamp(self, value: datetime | None) -> datetime | None:
        if value is None or self._target.dialect == "postgresql":
            return value
        # SQLite has no time zones: store naive UTC so the ISO text is the same for everyone.
        return value.astimezone(UTC).replace(tzinfo=None)

    def _upsert(self, table: Table) -> Any:
        insert = postgresql_insert if self._target.dialect == "postgresql" else sqlite_insert
        statement = insert(table)
        return statement.on_conflict_do_update(
            index_elements=[table.c.company_id, table.c.id],
            set_={name: statement.excluded[name] for name in _UPDATED_ON_CONFLICT},
        )

    async def write(
        self,
        stream: str,
        company_id: int,
        records: Sequence[DestinationRecord],
        *,
        run_id: str,
    ) -> None:
        """Upserts the batch in one transaction; returns after it committed."""
        check_run_id(run_id)
        async with self._translated(f"writing {stream}"):
            await self._write(stream, company_id, records)

    async def _write(
        self, stream: str, company_id: int, records: Sequence[DestinationRecord]
    ) -> None:
        table = await self.ensure_table(stream)
        if not records:
            return
        synced_at = self._timestamp(datetime.now(UTC))
        # ON CONFLICT cannot touch one row twice in a statement, so keep each id's last version.
        rows = [
            {
                "company_id": company_id,
                "id": record.id,
                "project_id": record.project_id,
                "updated_at": self._timestamp(record.updated_at),
                "deleted_at": self._timestamp(record.deleted_at),
                "synced_at": synced_at,
                "data": record.data,
            }
            for record in unique_last(records)
        ]
        statement = self._upsert(table)
        async with self._engine_or_fail().begin() as conn:
            for chunk in _chunks(rows, self._chunk_size):
                await conn.execute(statement, list(chunk))

    async def mark_deleted(
        self,
        stream: str,
        company_id: int,
        ids: Sequence[int],
        deleted_at: datetime,
        *,
        run_id: str,
    ) -> int:
        """Sets deleted_at on rows not already deleted; returns how many rows it marked."""
        check_run_id(run_id)
        async with self._translated(f"marking {stream} deletes"):
            return await self._mark_deleted(stream, company_id, ids, deleted_at)

    async def _mark_deleted(
        self, stream: str, company_id: int, ids: Sequence[int], deleted_at: datetime
    ) -> int:
        table = await self.ensure_table(stream)
        unique_ids = sorted(set(ids))
        if not unique_ids:
            return 0
        when = self._timestamp(ensure_utc(deleted_at, "deleted_at"))
        synced_at = self._timestamp(datetime.now(UTC))
        marked = 0
        async with self._engine_or_fail().begin() as conn:
            for chunk in _chunks(unique_ids, self._chunk_size):
                result = await conn.execute(
                    update(table)
                    .where(
                        table.c.company_id == company_id,
                        table.c.id.in_(list(chunk)),
                        table.c.deleted_at.is_(None),
                    )
                    .values(deleted_at=when, synced_at=synced_at)
                )
                marked += result.rowcount
        return marked

    async def finish_run(self, run_id: str, *, succeeded: bool) -> None:
        """Does nothing: every batch was already committed."""

    async def close(self) -> None:
        """Disposes of the engine and its connections."""
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    def describe(self) -> str:
        """Returns e.g. 'SQL tables in postgresql://user:***@host/db (prefix procore_)'."""
        details = []
        if self._prefix:
            details.append(f"table prefix {self._prefix!r}")
        if self._target.schema:
            details.append(f"schema {self._target.schema!r}")
        suffix = f" ({', '.join(details)})" if details else ""
        return f"SQL tables in {redact_destination_url(self._target.normalised)}{suffix}"


def create_schema_if_missing(conn: Connection, schema: str) -> None:
    """Creates a PostgreSQL schema unless it exists (checked first: CREATE needs a privilege)."""
    exists = conn.execute(
        select(text("1")).select_from(text("pg_namespace")).where(text("nspname = :schema")),
        {"schema": schema},
    ).first()
    if exists is None:
        conn.execute(CreateSchema(schema, if_not_exists=True))
