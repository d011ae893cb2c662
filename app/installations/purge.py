"""Purging a company's synced rows from a SQL destination (admin uninstall with purge=true).

The destination interface has no purge operation yet, so this deletes `WHERE company_id = :cid`
from every table of the destination that belongs to a catalog stream (prefix + stream name,
with a `company_id` column); tables of other applications in the same database are untouched.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from app.core.database import create_engine
from app.core.errors import Conflict
from app.destinations.urls import SQLTarget, parse_destination_url
from app.sync.catalog import STREAMS


def sql_target(destination_url: str) -> SQLTarget:
    """The SQL target of a destination URL, or Conflict: only SQL destinations can be purged."""
    target = parse_destination_url(destination_url)
    if not isinstance(target, SQLTarget):
        raise Conflict(
            "purge is supported for SQL destinations only; delete the company's files or "
            "pushed records on the receiving side",
            details=[{"field": "purge"}],
        )
    return target


def _stream_tables(conn: Connection, target: SQLTarget) -> list[str]:
    inspector = sa.inspect(conn)
    tables = []
    for name in inspector.get_table_names(schema=target.schema):
        if not name.startswith(target.table_prefix):
            continue
        if name[len(target.table_prefix) :] not in STREAMS:
            continue
        columns = {col["name"] for col in inspector.get_columns(name, schema=target.schema)}
        if "company_id" in columns:
            tables.append(name)
    return sorted(tables)


def _delete_company(conn: Connection, target: SQLTarget, company_id: int) -> dict[str, int]:
    deleted: dict[str, int] = {}
    for name in _stream_tables(conn, target):
        table = sa.table(name, sa.column("company_id"), schema=target.schema)
        result = conn.execute(sa.delete(table).where(table.c.company_id == company_id))
        deleted[name] = int(result.rowcount or 0)
    return deleted


async def purge_company(destination_url: str, company_id: int) -> dict[str, int]:
    """Deletes every synced row of one company; returns rows deleted per table."""
    target = sql_target(destination_url)
    engine = create_engine(target.url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(_delete_company, target, company_id)
    finally:
        await engine.dispose()
