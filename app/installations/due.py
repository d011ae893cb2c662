"""An installation's next scheduled slot."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.core.logging import get_logger
from app.installations.models import Installation
from app.installations.schedules import parse_schedule
from app.installations.service import PENDING_RETRY_SECONDS

log = get_logger(__name__)


def schedule_next(inst: Installation, now: datetime) -> None:
    """Moves an installation to its next slot after `now` (not after the missed one: no
    catch-up burst). A schedule that no longer parses retries in an hour."""
    if inst.pending_full_sync:
        inst.next_run_at = now + timedelta(seconds=PENDING_RETRY_SECONDS)
        return
    try:
        inst.next_run_at = parse_schedule(inst.schedule).next_run(now, inst.company_id)
    except ValueError as exc:
        # Schedules are validated on the way in; a bad one must not stall everybody else.
        log.error(
            "unusable schedule; retrying in an hour", company_id=inst.company_id, error=str(exc)
        )
        inst.next_run_at = now + timedelta(hours=1)
