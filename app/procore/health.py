"""Per-installation counters of the answers Procore's Integration Health watches."""

from __future__ import annotations

from collections import Counter

WATCHED_STATUSES = (401, 403, 404, 429)
MISSING_HEADER = "missing_company_header"
REQUESTS = "requests"
COUNTER_KEYS = (*(str(s) for s in WATCHED_STATUSES), MISSING_HEADER, REQUESTS)


class HealthCounters:
    """Counts 401/403/404/429 answers, header-less requests and all requests per company."""

    def __init__(self) -> None:
        self._counts: dict[int | None, Counter[str]] = {}

    def record(self, company_id: int | None, status: int, *, company_header_sent: bool) -> None:
        """Counts one request; ``status`` 0 means no answer arrived (network failure)."""
        counts = self._counts.setdefault(company_id, Counter())
        counts[REQUESTS] += 1
        if status in WATCHED_STATUSES:
            counts[str(status)] += 1
        if not company_header_sent:
            counts[MISSING_HEADER] += 1

    def snapshot(self, company_id: int | None) -> dict[str, int]:
        """Returns the current counters of one company (all keys, zeros included)."""
        counts = self._counts.get(company_id, Counter())
        return {key: counts[key] for key in COUNTER_KEYS}

    def drain(self, company_id: int | None) -> dict[str, int]:
        """Returns the counters of one company and resets them."""
        snapshot = self.snapshot(company_id)
        self._counts.pop(company_id, None)
        return snapshot

    def companies(self) -> list[int | None]:
        """Returns the company ids with counters (None is the token-level bucket)."""
        return list(self._counts)
