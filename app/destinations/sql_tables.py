"""The SQL destination's tables: one per stream (SPEC section 6) and one for quarantine.

The quarantine table keeps what the destination could not store, for an operator: one per
prefix (`<prefix>connector_quarantine`), one row per (company, stream, record); a record
quarantined again replaces its row, and one that later lands is removed from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    DateTime,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateSchema

from app.destinations.records import DestinationRecord
from app.destinations.screening import quarantine_text

CONTRACT_COLUMNS = frozenset(
    {"company_id", "id", "project_id", "updated_at", "deleted_at", "synced_at", "data"}
)
QUARANTINE_TABLE = "connector_quarantine"
QUARANTINE_COLUMNS = frozenset(
    {"company_id", "stream", "record_id", "run_id", "reason", "quarantined_at", "record"}
)
_UPDATED_ON_CONFLICT = ("run_id", "reason", "quarantined_at", "record")


def _known(metadata: MetaData, name: str) -> Table | None:
    return metadata.tables.get(name if metadata.schema is None else f"{metadata.schema}.{name}")


def define_stream_table(metadata: MetaData, name: str, *, keyed_by_parent: bool = False) -> Table:
    """Returns the contract table of one stream (SPEC section 6).

    A stream whose ids repeat under different parents (budget detail rows: the id is the
    budget line item's, the same in every budget view) gets a `parent_id` column and the
    primary key (company_id, parent_id, id): one row per parent and id, saying which parent.
    """
    existing = _known(metadata, name)
    if existing is not None:
        return existing
    parent = [Column("parent_id", BigInteger, nullable=False, autoincrement=False)]
    return Table(
        name,
        metadata,
        Column("company_id", BigInteger, nullable=False, autoincrement=False),
        Column("id", BigInteger, nullable=False, autoincrement=False),
        *(parent if keyed_by_parent else []),
        Column("project_id", BigInteger, nullable=True),
        Column("updated_at", DateTime(timezone=True), nullable=True),
        Column("deleted_at", DateTime(timezone=True), nullable=True),
        Column("synced_at", DateTime(timezone=True), nullable=False),
        Column("data", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        PrimaryKeyConstraint(*stream_key(keyed_by_parent)),
    )


def stream_key(keyed_by_parent: bool) -> tuple[str, ...]:
    """The primary key columns of a stream table."""
    return ("company_id", "parent_id", "id") if keyed_by_parent else ("company_id", "id")


def define_quarantine_table(metadata: MetaData, name: str) -> Table:
    """Returns the quarantine table's definition (ids as text: they may exceed 64 bits)."""
    existing = _known(metadata, name)
    if existing is not None:
        return existing
    return Table(
        name,
        metadata,
        Column("company_id", BigInteger, nullable=False, autoincrement=False),
        Column("stream", String(63), nullable=False),
        Column("record_id", String(80), nullable=False),
        Column("run_id", String(128), nullable=False),
        Column("reason", String(500), nullable=False),
        Column("quarantined_at", DateTime(timezone=True), nullable=False),
        # ASCII JSON text (see screening.quarantine_text): any database can keep it.
        Column("record", Text, nullable=False),
        PrimaryKeyConstraint("company_id", "stream", "record_id"),
    )


def quarantine_rows(
    company_id: int,
    stream: str,
    run_id: str,
    quarantined: Sequence[tuple[DestinationRecord, str]],
    when: datetime | None,
) -> list[dict[str, Any]]:
    """Returns one row per quarantined record (the last one of each id wins)."""
    rows: dict[str, dict[str, Any]] = {}
    for record, reason in quarantined:
        rows[str(record.id)] = {
            "company_id": company_id,
            "stream": stream,
            "record_id": str(record.id),
            "run_id": run_id,
            "reason": reason[:500],
            "quarantined_at": when,
            "record": quarantine_text(record.data),
        }
    return list(rows.values())


def updated_on_conflict() -> tuple[str, ...]:
    """Returns the columns a repeated quarantine of the same record replaces."""
    return _UPDATED_ON_CONFLICT


def create_schema_if_missing(conn: Connection, schema: str) -> None:
    """Creates a PostgreSQL schema unless it exists (checked first: CREATE needs a privilege)."""
    exists = conn.execute(
        select(text("1")).select_from(text("pg_namespace")).where(text("nspname = :schema")),
        {"schema": schema},
    ).first()
    if exists is None:
        conn.execute(CreateSchema(schema, if_not_exists=True))
