"""Prometheus metrics of the service, all under the `connector_` prefix.

The names the alert rules read (`deploy/prometheus/alerts.yaml`, documented in
`docs/operations.md` "Metrics") are a contract: rename them only together with both files.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.procore.health import HealthCounters

REGISTRY = CollectorRegistry(auto_describe=True)

# Counters by company_id: one series per installation and outcome is the cardinality the
# alerts need ("which company is failing"); a deployment serves thousands, not millions.
SYNC_RUNS = Counter(
    "connector_sync_runs",
    "Sync runs finished, by company and outcome (succeeded, failed, cancelled)",
    ["company_id", "status"],
    registry=REGISTRY,
)
SYNC_RUN_DURATION = Histogram(
    "connector_sync_run_duration_seconds",
    "Wall-clock duration of finished sync runs (the part run by this process), by outcome",
    ["status"],
    buckets=(1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600),
    registry=REGISTRY,
)
SYNC_RECORDS = Counter(
    "connector_sync_records",
    "Records written to destinations, by stream",
    ["stream"],
    registry=REGISTRY,
)
SYNC_RUNS_RUNNING = Gauge(
    "connector_sync_runs_running", "Sync runs executing in this process", registry=REGISTRY
)
SYNC_RUNS_RELEASED = Counter(
    "connector_sync_runs_released",
    "Running syncs handed back to the queue at shutdown (another worker resumes them)",
    registry=REGISTRY,
)
SYNC_RUNS_RECOVERED = Counter(
    "connector_sync_runs_recovered",
    "Runs whose lease expired (their worker died) and that were claimed again",
    registry=REGISTRY,
)
SYNC_LAST_SUCCESS = Gauge(
    "connector_sync_last_success_timestamp_seconds",
    "End of the last successful run (creation time until the first); active, unpaused only",
    ["company_id"],
    registry=REGISTRY,
)
SCHEDULE_PERIOD = Gauge(
    "connector_installation_schedule_period_seconds",
    "Nominal period of the installation's schedule; active, unpaused only",
    ["company_id"],
    registry=REGISTRY,
)
PROCORE_REQUESTS = Counter(
    "connector_procore_requests",
    "Answers from Procore by company, HTTP status code and class (code 0: no answer)",
    ["company_id", "code", "status_class"],
    registry=REGISTRY,
)
PROCORE_RATE_LIMITED = Counter(
    "connector_procore_rate_limited",
    "429 answers from Procore, by company (also in connector_procore_requests_total)",
    ["company_id"],
    registry=REGISTRY,
)
TOKEN_REFRESHES = Counter(
    "connector_procore_token_refreshes",
    "OAuth token requests sent to Procore's login host, by outcome (ok, refused, error)",
    ["result"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "connector_sync_queue_depth", "Runs queued and not yet claimed by a worker", registry=REGISTRY
)
SCHEDULER_LAG = Gauge(
    "connector_scheduler_lag_seconds",
    "How late the most overdue scheduled run is (0 when none is overdue)",
    registry=REGISTRY,
)
SCHEDULER_TICK = Histogram(
    "connector_scheduler_tick_seconds",
    "Duration of one scheduler tick (queue due runs, reap expired leases)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
READY = Gauge("connector_ready", "1 when /readyz would answer 200, else 0", registry=REGISTRY)


def status_class(code: int) -> str:
    """`2xx`, `4xx`, ... for an HTTP status; `none` when no answer arrived."""
    return f"{code // 100}xx" if code else "none"


class MeteredHealthCounters(HealthCounters):
    """The client's Integration Health counters, also exported as Prometheus counters.

    The Procore client records every answer here (one call per attempt), so this is the one
    place that sees each status code with its company.
    """

    def record(self, company_id: int | None, status: int, *, company_header_sent: bool) -> None:
        """Counts one answer in the health counters and in Prometheus."""
        super().record(company_id, status, company_header_sent=company_header_sent)
        company = "" if company_id is None else str(company_id)
        PROCORE_REQUESTS.labels(company, str(status), status_class(status)).inc()
        if status == 429:
            PROCORE_RATE_LIMITED.labels(company).inc()


def token_request_hook(login_url: str) -> Callable[[httpx.Response], Awaitable[None]]:
    """An httpx response hook counting answers of Procore's token endpoint."""
    token_url = login_url.rstrip("/") + "/oauth/token"

    async def hook(response: httpx.Response) -> None:
        request = response.request
        if request.method == "POST" and str(request.url).split("?", 1)[0] == token_url:
            if response.status_code == 200:
                result = "ok"
            elif response.status_code in (400, 401, 403):
                result = "refused"
            else:
                result = "error"
            TOKEN_REFRESHES.labels(result).inc()

    return hook
