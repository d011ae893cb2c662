"""Parquet encoding for the file destination, through the optional pyarrow dependency."""

from __future__ import annotations

import importlib
import io
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from app.core import json_codec
from app.destinations.base import DestinationError

MISSING_PYARROW = (
    "format=parquet needs pyarrow, which is not installed; install the 'parquet' extra "
    "(pip install 'procore-dmsa-connector[parquet]')"
)


def require_pyarrow() -> tuple[ModuleType, ModuleType]:
    """Returns the pyarrow and pyarrow.parquet modules, or raises a clear DestinationError."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError as error:
        raise DestinationError(MISSING_PYARROW) from error


def _timestamp(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def parquet_bytes(lines: list[dict[str, Any]]) -> bytes:
    """Returns a Parquet file holding the lines; data is kept as JSON text, exactly as sent."""
    pa, pq = require_pyarrow()
    timestamp = pa.timestamp("us", tz="UTC")
    schema = pa.schema(
        [
            pa.field("company_id", pa.int64(), nullable=False),
            pa.field("id", pa.int64(), nullable=False),
            pa.field("project_id", pa.int64()),
            pa.field("updated_at", timestamp),
            pa.field("deleted_at", timestamp),
            pa.field("synced_at", timestamp, nullable=False),
            pa.field("data", pa.string()),
        ]
    )
    columns = {
        "company_id": [line["company_id"] for line in lines],
        "id": [line["id"] for line in lines],
        "project_id": [line["project_id"] for line in lines],
        "updated_at": [_timestamp(line["updated_at"]) for line in lines],
        "deleted_at": [_timestamp(line["deleted_at"]) for line in lines],
        "synced_at": [_timestamp(line["synced_at"]) for line in lines],
        "data": [
            None if line["data"] is None else json_codec.dumps(line["data"]) for line in lines
        ],
    }
    if any("parent_id" in line for line in lines):  # a stream keyed by (parent, id)
        schema = schema.append(pa.field("parent_id", pa.int64()))
        columns["parent_id"] = [line.get("parent_id") for line in lines]
    table = pa.table(columns, schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def count_parquet_rows(path: Path) -> tuple[int, int]:
    """Returns (records, tombstones) in a Parquet file the destination wrote earlier."""
    _, pq = require_pyarrow()
    data = pq.read_table(path, columns=["data"]).column("data")
    deleted = int(data.null_count)
    return int(data.length()) - deleted, deleted
