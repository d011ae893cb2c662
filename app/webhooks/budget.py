"""The request budget: each installation's hourly Procore limit and what it used this hour.

The limit is learned from `X-Rate-Limit-Limit` when an answer describes the hourly window
(the headers describe whichever window is nearer exhaustion: procore-api.md section 5), kept
per installation, and assumed to be CONNECTOR_PROCORE_HOURLY_LIMIT until then. The service
plans at most CONNECTOR_REQUEST_BUDGET_SHARE of it per rolling hour; what runs and webhook
management used is counted per minute in `request_usage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.procore import ProcoreCredentials
from app.runtime import Runtime
from app.webhooks import usage_repository

HOUR = timedelta(hours=1)
LEARNED = "X-Rate-Limit-Limit"
ASSUMED = "assumed"


def minute_of(moment: datetime) -> datetime:
    """The minute a moment falls in."""
    return moment.replace(second=0, microsecond=0)


async def record(
    session: AsyncSession,
    company_id: int,
    requests: int,
    reconciled: int,
    now: datetime | None = None,
) -> None:
    """Adds requests made (and covered units reconciled) to this minute of a company."""
    if requests <= 0 and reconciled <= 0:
        return
    minute = minute_of(now or utcnow())
    await usage_repository.add_usage(
        session, company_id, minute, max(requests, 0), max(reconciled, 0)
    )


@dataclass(frozen=True)
class Budget:
    """An installation's budget this rolling hour."""

    hourly_limit: int
    source: str
    share: float
    used: int
    reconciled: int

    @property
    def planned(self) -> int:
        """Requests the service plans to use per hour."""
        return int(self.hourly_limit * self.share)

    @property
    def remaining(self) -> int:
        """Requests still planned this hour."""
        return max(0, self.planned - self.used)

    @property
    def used_ratio(self) -> float:
        """Used over planned."""
        return self.used / self.planned if self.planned else 1.0


async def current(
    session: AsyncSession,
    rt: Runtime,
    company_id: int,
    creds: ProcoreCredentials | None = None,
    now: datetime | None = None,
) -> Budget:
    """The company's limit (learning a new one the client saw) and its use this hour."""
    now = now or utcnow()
    limit, source = await hourly_limit(session, rt, company_id, creds, now)
    used, reconciled = await usage_repository.usage_since(
        session, company_id, minute_of(now - HOUR)
    )
    return Budget(limit, source, rt.settings.request_budget_share, used, reconciled)


async def hourly_limit(
    session: AsyncSession,
    rt: Runtime,
    company_id: int,
    creds: ProcoreCredentials | None,
    now: datetime,
) -> tuple[int, str]:
    """(limit, source): learned from the headers, stored from earlier, or assumed."""
    learned = rt.procore.limiter(creds, company_id).hourly_limit if creds is not None else None
    if learned:
        saved = await usage_repository.save_budget(
            session, company_id, hourly_limit=learned, source=LEARNED, now=now
        )
        return saved.hourly_limit, saved.source
    row = await usage_repository.budget(session, company_id)
    if row is not None and row.source == LEARNED:
        return row.hourly_limit, row.source
    return rt.settings.procore_hourly_limit, ASSUMED


async def note_deferred(session: AsyncSession, rt: Runtime, company_id: int, run_id: str) -> None:
    """Remembers that a run left units for later, so a continuation follows when the budget
    allows (see applier.continue_deferred)."""
    limit, source = await hourly_limit(session, rt, company_id, None, utcnow())
    row = await usage_repository.save_budget(
        session, company_id, hourly_limit=limit, source=source, now=utcnow()
    )
    row.deferred_run_id = run_id
