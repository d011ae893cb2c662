"""Injected faults: latency, slow headers, 5xx answers, dropped connections, 503 outages."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Faults:
    """The fault settings in force; the defaults inject nothing."""

    latency_ms: float = 0
    jitter_ms: float = 0
    error_rate: float = 0.0
    error_status: int = 500
    drop_rate: float = 0.0
    slow_headers_ms: float = 0
    unavailable: bool = False
    retry_after: int = 5
    path_prefix: str | None = None
    # 408 for an unfiltered list read with per_page above this (checked by the list endpoints).
    too_large_per_page: int | None = None

    def applies_to(self, path: str) -> bool:
        """Whether these faults touch a request path."""
        return self.path_prefix is None or path.startswith(self.path_prefix)


@dataclass(frozen=True)
class FaultPlan:
    """What to do to one request, drawn from the seeded fault generator."""

    delay_s: float = 0.0
    header_delay_s: float = 0.0
    drop: bool = False
    error_status: int | None = None
    unavailable: bool = False
    retry_after: int = 0


NO_FAULT = FaultPlan()


def plan_faults(faults: Faults, rng: random.Random, path: str) -> FaultPlan:
    """Draws the faults for one request."""
    if not faults.applies_to(path):
        return NO_FAULT
    delay = faults.latency_ms / 1000
    if faults.jitter_ms:
        delay += rng.uniform(0, faults.jitter_ms) / 1000
    drop = faults.drop_rate > 0 and rng.random() < faults.drop_rate
    error = None
    if not drop and faults.error_rate > 0 and rng.random() < faults.error_rate:
        error = faults.error_status
    return FaultPlan(
        delay_s=delay,
        header_delay_s=faults.slow_headers_ms / 1000,
        drop=drop,
        error_status=error,
        unavailable=faults.unavailable,
        retry_after=faults.retry_after,
    )
