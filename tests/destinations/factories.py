"""Small builders shared by the destination tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.destinations import Destination, DestinationPolicy, DestinationRecord, create_destination

BASE_TIME = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_record(
    record_id: int,
    *,
    project_id: int | None = 10,
    title: str = "original",
    minutes: int = 0,
    deleted_at: datetime | None = None,
    **extra: Any,
) -> DestinationRecord:
    """Returns a record shaped like a Procore RFI, updated `minutes` after BASE_TIME."""
    updated_at = BASE_TIME + timedelta(minutes=minutes)
    data: dict[str, Any] = {
        "id": record_id,
        "title": title,
        "updated_at": updated_at.isoformat().replace("+00:00", "Z"),
        "assignee": {"id": 7, "name": "Zoë Ångström"},
        **extra,
    }
    return DestinationRecord(
        id=record_id,
        project_id=project_id,
        updated_at=updated_at,
        deleted_at=deleted_at,
        data=data,
    )


def make_batch(count: int, *, start: int = 1, **kwargs: Any) -> list[DestinationRecord]:
    """Returns `count` records with consecutive ids."""
    return [make_record(record_id, **kwargs) for record_id in range(start, start + count)]


ANYWHERE = DestinationPolicy.unrestricted()


def make_destination(url: str, **options: Any) -> Destination:
    """Returns create_destination(url) under a policy that allows any address and path."""
    return create_destination(url, policy=options.pop("policy", ANYWHERE), **options)
