"""The SQL a warehouse destination runs beside dlt's loads, through dlt's SQL client (its
placeholders are `%s` on every warehouse): deletes, purge, child rows of emptied lists, and
records leaving the quarantine. Each caller opens the client and the transaction."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from app.destinations.warehouse.shaping import ShapedTable

CHUNK = 500
Emptied = list[tuple[str, tuple[str, ...], Sequence[tuple[Any, ...]]]]


def chunks(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    """The items in slices of at most `size`."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def children_of(table: str, existing: Mapping[str, Any]) -> list[str]:
    """The child tables of a table (`<table>__<field>` with a `_position` column)."""
    return [
        name
        for name, schema in existing.items()
        if name.startswith(table + "__") and "_position" in schema.get("columns", {})
    ]


def emptied_children(existing: Mapping[str, Any], shaped: Sequence[ShapedTable]) -> Emptied:
    """For each existing child table, the batch's parents that have no rows in it now.

    The merge replaces a parent's child rows only when the batch has at least one of them,
    so the rows of a list that became empty or disappeared are deleted explicitly.
    """
    loading = {table.name: table for table in shaped}
    found: Emptied = []
    for parent in shaped:
        if parent.types.get("data") != "json" or not parent.rows:
            continue
        key = parent.primary_key
        parents = {tuple(row[name] for name in key) for row in parent.rows}
        child_key = ("company_id", *(f"_parent_{name}" for name in key[1:]))
        for name in children_of(parent.name, existing):
            child = loading.get(name)
            emptied = sorted(parents - (child.parents if child is not None else set()))
            found.extend((name, child_key, chunk) for chunk in chunks(emptied))
    return found


def delete_children(client: Any, emptied: Emptied) -> None:
    """Deletes the child rows of the parents `emptied_children` found."""
    for name, child_key, parents in emptied:
        table = client.make_qualified_table_name(name)
        one = "(" + " AND ".join(f"{column} = %s" for column in child_key) + ")"
        condition = " OR ".join([one] * len(parents))
        values = [value for parent in parents for value in parent]
        client.execute_sql(f"DELETE FROM {table} WHERE {condition}", *values)  # noqa: S608


def leave_quarantine(
    client: Any, quarantine: str, company_id: int, landed: Mapping[str, Sequence[str]]
) -> None:
    """Removes the records that landed from the quarantine table."""
    table = client.make_qualified_table_name(quarantine)
    for stream, ids in landed.items():
        for chunk in chunks(ids):
            marks = ", ".join(["%s"] * len(chunk))
            client.execute_sql(
                f"DELETE FROM {table} WHERE company_id = %s AND stream = %s "  # noqa: S608
                f"AND record_id IN ({marks})",
                company_id,
                stream,
                *chunk,
            )


def mark_deleted(
    client: Any,
    name: str,
    company_id: int,
    ids: Sequence[int],
    deleted_at: datetime,
    now: datetime,
) -> int:
    """Sets deleted_at (and synced_at) on rows not deleted yet; returns how many."""
    table = client.make_qualified_table_name(name)
    marked = 0
    for chunk in chunks(ids):
        marks = ", ".join(["%s"] * len(chunk))
        where = f"company_id = %s AND id IN ({marks}) AND deleted_at IS NULL"
        rows = client.execute_sql(
            f"SELECT COUNT(*) FROM {table} WHERE {where}",  # noqa: S608
            company_id,
            *chunk,
        )
        marked += int(rows[0][0])
        client.execute_sql(
            f"UPDATE {table} SET deleted_at = %s, synced_at = %s WHERE {where}",  # noqa: S608
            deleted_at,
            now,
            company_id,
            *chunk,
        )
    return marked


def delete_company(
    client: Any,
    existing: Mapping[str, Any],
    tables: Mapping[str, str],
    quarantine: str,
    company_id: int,
) -> dict[str, int]:
    """Deletes the company's rows from each stream's table and child tables and from the
    quarantine table; returns the rows removed per stream (its own table's)."""
    counts: dict[str, int] = {}
    for stream, name in tables.items():
        owned = [name, *children_of(name, existing)] if name in existing else []
        for table in owned:
            qualified = client.make_qualified_table_name(table)
            where = f"FROM {qualified} WHERE company_id = %s"
            if table == name:
                rows = client.execute_sql(f"SELECT COUNT(*) {where}", company_id)
                counts[stream] = int(rows[0][0])
            client.execute_sql(f"DELETE {where}", company_id)
    if quarantine in existing:
        qualified = client.make_qualified_table_name(quarantine)
        client.execute_sql(f"DELETE FROM {qualified} WHERE company_id = %s", company_id)  # noqa: S608
    return counts


def delete_company_files(
    client: Any, existing: Mapping[str, Any], tables: Mapping[str, str], company_id: int
) -> dict[str, int]:
    """On a file system: removes the company's folder under each table (stream, children,
    quarantine under the stream ''); returns the rows its files held per stream."""
    fs, root = client.fs_client, str(client.dataset_path).rstrip("/")
    counts: dict[str, int] = {}
    for stream, name in tables.items():
        for table in [name, *children_of(name, existing)]:
            folder = f"{root}/{table}/{company_id}"
            if not fs.exists(folder):
                continue
            if table == name and stream:
                counts[stream] = _count_rows(fs, folder)
            fs.rm(folder, recursive=True)
    return counts


def _count_rows(fs: Any, folder: str) -> int:
    parquet: Any = importlib.import_module("pyarrow.parquet")
    total = 0
    for path in fs.find(folder):
        if path.endswith(".parquet"):
            with fs.open(path, "rb") as handle:
                total += int(parquet.ParquetFile(handle).metadata.num_rows)
    return total
