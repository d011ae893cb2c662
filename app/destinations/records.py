"""The record a destination receives, and its one serialised shape for files and HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Stream names become table names and directory names, so they are kept to a safe alphabet.
_STREAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# Run ids become file names.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def ensure_utc(value: datetime | None, field: str) -> datetime | None:
    """Returns value converted to UTC; refuses naive datetimes, whose zone is unknowable."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be a timezone-aware datetime, got naive {value!r}")
    return value.astimezone(UTC)


def format_timestamp(value: datetime | None) -> str | None:
    """Returns an ISO 8601 UTC timestamp ending in 'Z', or None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def check_stream_name(stream: str) -> str:
    """Returns the stream name if it is safe as a table and directory name; raises otherwise."""
    if not _STREAM_NAME.fullmatch(stream):
        raise ValueError(
            f"stream name {stream!r} must be lower-case letters, digits and underscores, "
            "starting with a letter, at most 63 characters"
        )
    return stream


def check_run_id(run_id: str) -> str:
    """Returns the run id if it is safe inside a file name; raises otherwise."""
    if not _RUN_ID.fullmatch(run_id):
        raise ValueError(
            f"run_id {run_id!r} must be letters, digits, '.', '_' or '-' (at most 128 characters)"
        )
    return run_id


@dataclass(frozen=True, slots=True)
class DestinationRecord:
    """One Procore record on its way to a destination."""

    id: int
    project_id: int | None
    updated_at: datetime | None
    deleted_at: datetime | None
    data: dict[str, Any]
    # The parent record of a stream whose ids repeat under different parents (a budget
    # detail row's id is its line item's, the same in every budget view): part of the key.
    parent_id: int | None = None

    def __post_init__(self) -> None:
        # Normalise to UTC once here so that every destination can rely on it.
        object.__setattr__(self, "updated_at", ensure_utc(self.updated_at, "updated_at"))
        object.__setattr__(self, "deleted_at", ensure_utc(self.deleted_at, "deleted_at"))


def record_line(company_id: int, record: DestinationRecord, synced_at: datetime) -> dict[str, Any]:
    """Returns the JSON object that files and HTTP push carry for one record."""
    line: dict[str, Any] = {
        "company_id": company_id,
        "id": record.id,
        "project_id": record.project_id,
        "updated_at": format_timestamp(record.updated_at),
        "deleted_at": format_timestamp(record.deleted_at),
        "synced_at": format_timestamp(synced_at),
        "data": record.data,
    }
    if record.parent_id is not None:
        line["parent_id"] = record.parent_id
    return line


def tombstone_line(
    company_id: int, record_id: int, deleted_at: datetime, synced_at: datetime
) -> dict[str, Any]:
    """Returns the JSON object that files and HTTP push carry for a deleted record."""
    return {
        "company_id": company_id,
        "id": record_id,
        "project_id": None,
        "updated_at": None,
        "deleted_at": format_timestamp(ensure_utc(deleted_at, "deleted_at")),
        "synced_at": format_timestamp(synced_at),
        "data": None,
    }


def unique_last(records: Iterable[DestinationRecord]) -> list[DestinationRecord]:
    """Returns the records with duplicate keys (parent, id) removed, keeping the last of each."""
    by_key: dict[tuple[int | None, int], DestinationRecord] = {}
    for record in records:
        key = (record.parent_id, record.id)
        by_key.pop(key, None)
        by_key[key] = record
    return list(by_key.values())
