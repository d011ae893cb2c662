"""Turning Procore JSON records into destination records."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from app.destinations import DestinationRecord


def parse_timestamp(value: Any) -> datetime | None:
    """Parses Procore's ISO 8601 timestamps (or dates) into aware UTC datetimes."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(text[:10]), datetime.min.time())
        except ValueError:
            return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def record_id(record: dict[str, Any]) -> int | None:
    """The integer id of a record, or None when it has none usable."""
    value = record.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def deleted_at_of(record: dict[str, Any], fallback: datetime) -> datetime | None:
    """When Procore says a record is deleted: its deleted_at, or `fallback` if only flagged."""
    stamp = parse_timestamp(record.get("deleted_at"))
    if stamp is not None:
        return stamp
    if any(record.get(flag) is True for flag in ("deleted", "is_deleted", "is_in_recycle_bin")):
        return fallback
    return None


def to_destination(
    records: Iterable[dict[str, Any]],
    *,
    project_id: int | None,
    now: datetime,
    parent_id: int | None = None,
) -> tuple[list[DestinationRecord], int]:
    """Converts a page; returns the records and how many were skipped for lack of an id."""
    converted: list[DestinationRecord] = []
    skipped = 0
    for record in records:
        rid = record_id(record)
        if rid is None:
            skipped += 1
            continue
        converted.append(
            DestinationRecord(
                id=rid,
                project_id=project_id,
                updated_at=parse_timestamp(record.get("updated_at")),
                deleted_at=deleted_at_of(record, now),
                data=record,
                parent_id=parent_id,
            )
        )
    return converted, skipped
