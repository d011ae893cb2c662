"""An installation's next scheduled slot."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.core.errors import BadRequest
from app.core.logging import get_logger
from app.installations.models import Installation
from app.installations.schedules import (
    DEFAULT_TIME_ZONE,
    Schedule,
    normalise_time_zone,
    parse_schedule,
)
from app.installations.schemas import InstallationPatch

log = get_logger(__name__)

# A re-install waiting for its old run to stop looks again this often.
PENDING_RETRY_SECONDS = 5


def schedule_next(inst: Installation, now: datetime) -> None:
    """Moves an installation to its next slot after `now` (not after the missed one: no
    catch-up burst). A schedule that no longer parses retries in an hour."""
    if inst.pending_full_sync:
        inst.next_run_at = now + timedelta(seconds=PENDING_RETRY_SECONDS)
        return
    try:
        schedule = parse_schedule(inst.schedule, inst.time_zone or DEFAULT_TIME_ZONE)
        inst.next_run_at = schedule.next_run(now, inst.company_id)
    except ValueError as exc:
        # Schedules are validated on the way in; a bad one must not stall everybody else.
        log.error(
            "unusable schedule; retrying in an hour", company_id=inst.company_id, error=str(exc)
        )
        inst.next_run_at = now + timedelta(hours=1)


def patched_schedule(inst: Installation, patch: InstallationPatch) -> Schedule:
    """The schedule a patch gives (its schedule and/or time zone); BadRequest naming the field."""
    time_zone = inst.time_zone or DEFAULT_TIME_ZONE
    if patch.time_zone is not None:
        try:
            time_zone = normalise_time_zone(patch.time_zone)
        except ValueError as exc:
            raise BadRequest(f"time_zone: {exc}", details=[{"field": "time_zone"}]) from None
    try:
        return parse_schedule(
            inst.schedule if patch.schedule is None else patch.schedule, time_zone
        )
    except ValueError as exc:
        raise BadRequest(f"schedule: {exc}", details=[{"field": "schedule"}]) from None
