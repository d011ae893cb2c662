"""SQL destination: one table per stream, upserted on (company_id, id) (SPEC section 6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    MetaData,
    Table,
    inspect,
    text,
    update,
)
from sqlalchemy import column as sa_column
from sqlalchemy import delete as sa_delete
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import table as sa_table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.logging import get_logger, scrub_text
from app.destinations.base import (
    Destination,
    DestinationError,
    WriteResult,
)
from app.destinations.policy import DestinationPolicy
from app.destinations.records import (
    DestinationRecord,
    check_run_id,
    check_stream_name,
    ensure_utc,
    unique_last,
)
from app.destinations.screening import POSTGRESQL, SQLITE, notes, screen
from app.destinations.sql_engine import create_sql_engine
from app.destinations.sql_tables import (
    CONTRACT_COLUMNS,
    QUARANTINE_COLUMNS,
    QUARANTINE_TABLE,
    create_schema_if_missing,
    define_quarantine_table,
    define_stream_table,
    quarantine_rows,
    stream_key,
    updated_on_conflict,
)
from app.destinations.sql_views import create_typed_view
from app.destinations.urls import SQLTarget, check_table_prefix, redact_destination_url

log = get_logger(__name__)
MAX_IDENTIFIER_LENGTH = 63  # PostgreSQL truncates longer names silently; refuse them instead.
_OPEN_ATTEMPTS = 20
_UPDATED_ON_CONFLICT = ("project_id", "updated_at", "deleted_at", "synced_at", "data")


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


class SQLDestination(Destination):
    """Upserts records into one table per stream through SQLAlchemy's async engine."""

    def __init__(
        self,
        target: SQLTarget,
        *,
        policy: DestinationPolicy,
        table_prefix: str = "",
        chunk_size: int = 1000,
    ):
        self._target = target
        self._policy = policy
        # The URL's own ?table_prefix= is the more specific choice, so it wins over the default.
        self._prefix = target.table_prefix or check_table_prefix(table_prefix)
        self._chunk_size = chunk_size
        self._engine: AsyncEngine | None = None
        self._metadata = MetaData(schema=target.schema)
        self._ready: dict[str, Table] = {}
        self._lock = asyncio.Lock()
        self._limits = POSTGRESQL if target.dialect == "postgresql" else SQLITE

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
        engine = await create_sql_engine(self._target, self._policy)
        for attempt in range(1, _OPEN_ATTEMPTS + 1):
            try:
                await self._check_connection(engine)
                break
            except DBAPIError as error:
                # SQLite answers "database is locked" at once, without its busy timeout, while
                # another connection switches the same new file to WAL (two installations'
                # first runs into one SQLite destination): try again briefly.
                locked = self.dialect == "sqlite" and "locked" in str(error.orig)
                if locked and attempt < _OPEN_ATTEMPTS:
                    await asyncio.sleep(0.05 * attempt)
                    continue
                await engine.dispose()
                raise DestinationError(
                    f"cannot open {self.describe()}: {type(error.orig).__name__}: {error.orig}"
                ) from error
        self._engine = engine

    async def _check_connection(self, engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT 1"))
            if self._target.schema is not None:
                await conn.run_sync(create_schema_if_missing, self._target.schema)
            quarantine = self._quarantine_table()
            if await conn.run_sync(self._has_table, quarantine.name):
                self._ready[quarantine.name] = quarantine

    def _engine_or_fail(self) -> AsyncEngine:
        if self._engine is None:
            raise DestinationError("the SQL destination is not open; call open() first")
        return self._engine

    def _create_or_check(
        self, conn: Connection, table: Table, needed: frozenset[str] = CONTRACT_COLUMNS
    ) -> None:
        inspector = inspect(conn)
        if not inspector.has_table(table.name, schema=table.schema):
            table.create(conn)
            return
        columns = {column["name"] for column in inspector.get_columns(table.name, table.schema)}
        missing = sorted(needed - columns)
        if missing:
            raise DestinationError(
                f"table {table.name!r} exists but lacks the connector's columns "
                f"{', '.join(missing)}; choose another table_prefix or schema"
            )

    async def ensure_table(self, stream: str, *, keyed_by_parent: bool = False) -> Table:
        """Returns the stream's table, creating it the first time the stream is written."""
        name = self.table_name(stream)
        table = self._ready.get(name)
        if table is not None:
            return table
        needed = CONTRACT_COLUMNS | ({"parent_id"} if keyed_by_parent else set())
        definition = define_stream_table(self._metadata, name, keyed_by_parent=keyed_by_parent)
        table = await self._ensure(definition, frozenset(needed))
        if self._target.typed_views:
            await self._typed_view(table, stream)
        return table

    async def _typed_view(self, table: Table, stream: str) -> None:
        """Creates the stream's typed view; a failure is logged, never fails the write."""
        try:
            async with self._lock, self._engine_or_fail().begin() as conn:
                await conn.run_sync(create_typed_view, table.schema, table.name, stream)
        except DBAPIError as error:
            log.warning("typed_view_failed", table=table.name, error=type(error.orig).__name__)

    async def _ensure(self, table: Table, needed: frozenset[str]) -> Table:
        engine = self._engine_or_fail()
        async with self._lock:
            if table.name in self._ready:
                return self._ready[table.name]
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(self._create_or_check, table, needed)
            except (IntegrityError, OperationalError, ProgrammingError):
                # Another process created the same table between our check and our CREATE.
                async with engine.begin() as conn:
                    await conn.run_sync(self._create_or_check, table, needed)
            self._ready[table.name] = table
            return table

    def _quarantine_table(self) -> Table:
        return define_quarantine_table(self._metadata, self._prefix + QUARANTINE_TABLE)

    def _has_table(self, conn: Connection, name: str) -> bool:
        return bool(inspect(conn).has_table(name, schema=self._target.schema))

    async def purge(self, company_id: int, streams: Collection[str]) -> dict[str, int]:
        """Deletes the company's rows from this prefix's stream tables and quarantine table."""
        engine = self._engine_or_fail()
        async with self._translated("purging a company"), engine.begin() as conn:
            return await conn.run_sync(self._delete_company, company_id, sorted(streams))

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

    def _delete_company(
        self, conn: Connection, company_id: int, streams: list[str]
    ) -> dict[str, int]:
        schema = self._target.schema
        inspector = sa_inspect(conn)
        existing = set(inspector.get_table_names(schema=schema))
        # Only this prefix's tables of known streams (a `b_rfis` is not the un-prefixed
        # `rfis`), and only if they have the contract's columns: others are someone else's.
        wanted = {self.table_name(stream): (stream, CONTRACT_COLUMNS) for stream in streams}
        wanted[self._prefix + QUARANTINE_TABLE] = ("", QUARANTINE_COLUMNS)
        deleted: dict[str, int] = {}
        for name, (stream, needed) in sorted(wanted.items()):
            if name not in existing:
                continue
            columns = {column["name"] for column in inspector.get_columns(name, schema=schema)}
            if not columns >= needed:
                continue
            table = sa_table(name, sa_column("company_id"), schema=schema)
            result = conn.execute(sa_delete(table).where(table.c.company_id == company_id))
            if stream:
                deleted[stream] = int(result.rowcount or 0)
        return deleted

    def _timestamp(self, value: datetime | None) -> datetime | None:
        if value is None or self._target.dialect == "postgresql":
            return value
        # SQLite has no time zones: store naive UTC so the ISO text is the same for everyone.
        return value.astimezone(UTC).replace(tzinfo=None)

    def _upsert(self, table: Table, updated: Sequence[str], key: Sequence[str]) -> Any:
        insert = postgresql_insert if self._target.dialect == "postgresql" else sqlite_insert
        statement = insert(table)
        return statement.on_conflict_do_update(
            index_elements=[table.c[name] for name in key],
            set_={name: statement.excluded[name] for name in updated},
        )

    async def write(
        self,
        stream: str,
        company_id: int,
        records: Sequence[DestinationRecord],
        *,
        run_id: str,
    ) -> WriteResult:
        """Upserts the batch and its quarantined records in one transaction, then returns."""
        check_run_id(run_id)
        kept, quarantined = screen(records, self._limits)
        async with self._translated(f"writing {stream}"):
            await self._write(stream, company_id, kept, quarantined, run_id)
        return WriteResult(written=len(kept), quarantined=notes(quarantined))

    async def _write(
        self,
        stream: str,
        company_id: int,
        records: Sequence[DestinationRecord],
        quarantined: Sequence[tuple[DestinationRecord, str]],
        run_id: str,
    ) -> None:
        keyed_by_parent = any(record.parent_id is not None for record in records)
        table = await self.ensure_table(stream, keyed_by_parent=keyed_by_parent)
        if not records and not quarantined:
            return
        synced_at = self._timestamp(datetime.now(UTC))
        aside = self._ready.get(self._prefix + QUARANTINE_TABLE)
        if quarantined:
            aside = await self._ensure(self._quarantine_table(), QUARANTINE_COLUMNS)
        held = quarantine_rows(company_id, stream, run_id, quarantined, synced_at)
        landed = sorted({str(record.id) for record in records})
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
                **({"parent_id": record.parent_id} if keyed_by_parent else {}),
            }
            for record in unique_last(records)
        ]
        statement = self._upsert(table, _UPDATED_ON_CONFLICT, stream_key(keyed_by_parent))
        async with self._engine_or_fail().begin() as conn:
            for chunk in _chunks(rows, self._chunk_size):
                await conn.execute(statement, list(chunk))
            if aside is not None and landed:
                # A record that lands after being quarantined leaves the quarantine.
                for ids in _chunks(landed, self._chunk_size):
                    await conn.execute(
                        sa_delete(aside).where(
                            aside.c.company_id == company_id,
                            aside.c.stream == stream,
                            aside.c.record_id.in_(list(ids)),
                        )
                    )
            if aside is not None and held:
                key = ("company_id", "stream", "record_id")
                await conn.execute(self._upsert(aside, updated_on_conflict(), key), held)

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
