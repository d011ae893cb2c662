"""Prometheus metrics of the service, all under the `connector_` prefix.

The names the alert rules read (`deploy/prometheus/alerts.yaml`, documented in
`docs/operations.md` "Metrics") are a contract: rename them only together with both files.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
