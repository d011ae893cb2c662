"""Prometheus metrics of the service, all under the `connector_` prefix."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RUNS = Counter("connector_runs", "Sync runs finished, by status", ["status"], registry=REGISTRY)
RUN_DURATION = Histogram(
    "connector_run_duration_seconds",
    "Duration of finished sync runs",
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600),
    registry=REGISTRY,
)
RECORDS = Counter(
    "connector_records", "Records written to destinations, by stream", ["stream"], registry=REGISTRY
)
PROCORE_REQUESTS = Counter(
    "connector_procore_requests",
    "Requests sent to Procore, by status class",
    ["status_class"],
    registry=REGISTRY,
)
PROCORE_429 = Counter("connector_procore_429", "429 answers from Procore", registry=REGISTRY)
TOKEN_REFRESHES = Counter(
    "connector_token_refreshes", "OAuth tokens fetched from Procore", registry=REGISTRY
)
QUEUE_DEPTH = Gauge("connector_queue_depth", "Runs waiting to be claimed", registry=REGISTRY)
SCHEDULER_LAG = Gauge(
    "connector_scheduler_lag_seconds",
    "Seconds the oldest due installation has waited past its next run time",
    registry=REGISTRY,
)
RUNNING = Gauge("connector_runs_running", "Runs executing in this process", registry=REGISTRY)
