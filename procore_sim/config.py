"""Simulator configuration: one immutable value object, every field defaulted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

DEFAULT_CLIENT_ID = "sim-client-id"
DEFAULT_CLIENT_SECRET = "sim-client-secret"  # noqa: S105 - a published test credential


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
    hourly_limit: int = 100_000
    spike_limit: int = 1_000
    spike_window_seconds: float = 10.0
    hourly_window_seconds: float = 3600.0
    max_per_page: int = 10_000
    default_per_page: int = 100
    # Extra companies that exist in Procore but never installed the app (403 on every call).
    uninstalled_companies: int = 0
    # More (client_id, client_secret) pairs accepted by /oauth/token, each with its own limits.
    extra_clients: tuple[tuple[str, str], ...] = ()
    # Generated timestamps lie before midnight UTC of this day; None means today.
    today: date | None = None
    daily_log_days: int = 90
    max_log_entries: int = 200_000
