"""Simulator configuration: one immutable value object, every field defaulted like production.

Each documented production behaviour (procore-api.md sections 4, 5, 8 and 11) is on by default
and switchable on its own, so a suite that does not handle one yet can turn exactly that one
off, and say why, at its call site. `SimulatorConfig.lenient()` only raises the rate limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

DEFAULT_CLIENT_ID = "sim-client-id"
DEFAULT_CLIENT_SECRET = "sim-client-secret"  # noqa: S105 - a published test credential
# The documented long-standing limits: 3,600 an hour and 25 in a rolling 10 seconds.
PRODUCTION_HOURLY_LIMIT = 3600
PRODUCTION_SPIKE_LIMIT = 25
# What `lenient()` raises them to: high enough that no test waits on them.
LENIENT_HOURLY_LIMIT = 100_000
LENIENT_SPIKE_LIMIT = 1_000


@dataclass(frozen=True)
class SimulatorConfig:
    """How many companies, projects and records to generate, and how the fake Procore behaves."""

    companies: int = 2
    projects: int = 3
    records: int = 50
    seed: int = 1
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    token_lifetime: int = 5400
    # Requests per (client_id, company header): a fixed hourly window opened by its first
    # request and a rolling spike window (the last spike_window_seconds).
    hourly_limit: int = PRODUCTION_HOURLY_LIMIT
    spike_limit: int = PRODUCTION_SPIKE_LIMIT
    spike_window_seconds: float = 10.0
    hourly_window_seconds: float = 3600.0
    max_per_page: int = 10_000
    default_per_page: int = 100
    # The projects list's own cap (its documented maximum page size).
    projects_max_per_page: int = 300
    # Extra companies that exist in Procore but never installed the app (403 on every call).
    uninstalled_companies: int = 0
    # Extra installed companies on a free plan: /companies lists them only with
    # include_free_companies=true.
    free_companies: int = 0
    # More (client_id, client_secret) pairs accepted by /oauth/token, each with its own limits.
    extra_clients: tuple[tuple[str, str], ...] = ()
    # Generated timestamps lie before midnight UTC of this day; None means today.
    today: date | None = None
    daily_log_days: int = 90
    max_log_entries: int = 200_000
    # ---- production behaviours, each on by default -------------------------------------------
    # The last `inactive_projects` projects of each company are inactive (one stays active).
    inactive_projects: int = 1
    # /projects lists active projects only unless filters[by_status]=All|Inactive.
    active_projects_only: bool = True
    # Commitments are compact unless view=extended.
    compact_commitments: bool = True
    # Manpower logs are approved ones only unless filters[status]=pending|all.
    approved_manpower_only: bool = True
    # Budget detail rows carry their budget line item's id, the same in every view, and no view
    # id. Off: each view has its own rows with their own ids and a budget_view_id (legacy).
    budget_rows_repeat_ids: bool = True
    # Inactive users and vendors are only on their /inactive lists (off: on the normal lists).
    inactive_on_own_lists: bool = True
    # 408 "request too large" for a list read with per_page above this and no filters[...].
    too_large_per_page: int | None = None
    # ---- webhooks -------------------------------------------------------------------------
    # Whether the app has the "Webhooks API" permission in each company (per company at runtime).
    webhooks_permission: bool = True
    webhook_timeout_seconds: float = 5.0
    webhook_retry_base_seconds: float = 1.0
    webhook_retry_cap_seconds: float = 3600.0
    webhook_discard_after_seconds: float = 12 * 3600.0

    @classmethod
    def lenient(cls, **overrides: Any) -> SimulatorConfig:
        """Production behaviour with the rate limits raised out of the way (tests needing speed)."""
        values: dict[str, Any] = {
            "hourly_limit": LENIENT_HOURLY_LIMIT,
            "spike_limit": LENIENT_SPIKE_LIMIT,
        }
        values.update(overrides)
        return cls(**values)

    def behaviours(self) -> list[str]:
        """One line per production behaviour and limit, as `connector simulator` prints them."""
        window = f"{self.spike_window_seconds:g}"
        hourly = f"{self.hourly_window_seconds:g}"
        too_large = (
            "off"
            if self.too_large_per_page is None
            else f"per_page > {self.too_large_per_page} without filters"
        )
        return [
            f"rate limits: {self.hourly_limit} per {hourly} s (fixed window), "
            f"{self.spike_limit} per rolling {window} s",
            f"paging: default {self.default_per_page}, max {self.max_per_page}; "
            f"projects max {self.projects_max_per_page}",
            f"projects: active only unless filters[by_status]: {_on(self.active_projects_only)}; "
            f"inactive per company: {self.inactive_projects}",
            f"commitments compact unless view=extended: {_on(self.compact_commitments)}",
            f"manpower logs approved only unless filters[status]: "
            f"{_on(self.approved_manpower_only)}",
            f"budget detail row ids repeat across views: {_on(self.budget_rows_repeat_ids)}",
            f"inactive users/vendors only on /inactive lists: {_on(self.inactive_on_own_lists)}",
            f"408 request too large: {too_large}",
            f"free companies: {self.free_companies} (listed only with include_free_companies)",
            f"webhooks: permission {_on(self.webhooks_permission)}, timeout "
            f"{self.webhook_timeout_seconds:g} s, retry {self.webhook_retry_base_seconds:g} s "
            f"doubling to {self.webhook_retry_cap_seconds:g} s, discard after "
            f"{self.webhook_discard_after_seconds:g} s",
        ]


def _on(flag: bool) -> str:
    return "on" if flag else "off"
