"""Prometheus metrics of webhooks, freshness and the request budget (`connector_` prefix).

No series carries a company id unless CONNECTOR_METRICS_COMPANY_LABELS is on: the stream
gauges show the worst installation, the `_by_company` variants exist only with the flag.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from app.core.metrics import REGISTRY

WEBHOOK_RECEIVED = Counter(
    "connector_webhook_events_received",
    "Webhook deliveries authenticated, validated and stored (duplicates not counted)",
    registry=REGISTRY,
)
WEBHOOK_DEDUPLICATED = Counter(
    "connector_webhook_events_deduplicated",
    "Webhook deliveries of an event already stored (Procore delivers at least once)",
    registry=REGISTRY,
)
WEBHOOK_DROPPED = Counter(
    "connector_webhook_events_dropped",
    "Authenticated deliveries answered 2xx and not stored, by reason (uninstalled, "
    "unknown_company, unselected_stream, unknown_resource)",
    ["reason"],
    registry=REGISTRY,
)
WEBHOOK_REFUSED = Counter(
    "connector_webhook_deliveries_refused",
    "Deliveries refused, by reason (unauthorized: 401, invalid: 400, too_large: 413, "
    "unavailable: 503)",
    ["reason"],
    registry=REGISTRY,
)
WEBHOOK_APPLIED = Counter(
    "connector_webhook_events_applied",
    "Stored events settled, by outcome (applied; unmatched: the read did not return the "
    "record; gave_up: left to reconciliation; closed: the installation went away)",
    ["outcome"],
    registry=REGISTRY,
)
WEBHOOK_LAG = Histogram(
    "connector_webhook_lag_seconds",
    "From an event's timestamp in Procore to its unit's records written to the destination",
    buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120, 300, 900, 3600),
    registry=REGISTRY,
)
WEBHOOK_PENDING = Gauge(
    "connector_webhook_events_open",
    "Stored events not applied yet (waiting for a run, or taken by one)",
    registry=REGISTRY,
)
WEBHOOK_SUBSCRIPTIONS = Gauge(
    "connector_webhook_subscriptions",
    "Installations by webhook subscription status",
    ["status"],
    registry=REGISTRY,
)
STREAM_FRESHNESS = Gauge(
    "connector_stream_freshness_seconds",
    "Age of the time up to which a stream is known complete (its stalest unit), worst installation",
    ["stream"],
    registry=REGISTRY,
)
BUDGET_USED = Gauge(
    "connector_request_budget_used_ratio",
    "Procore requests in the last hour over the planned share of the hourly limit, worst "
    "installation",
    registry=REGISTRY,
)
STREAM_FRESHNESS_BY_COMPANY = Gauge(
    "connector_stream_freshness_by_company_seconds",
    "connector_stream_freshness_seconds per installation (CONNECTOR_METRICS_COMPANY_LABELS)",
    ["company_id", "stream"],
    registry=REGISTRY,
)
BUDGET_USED_BY_COMPANY = Gauge(
    "connector_request_budget_used_by_company_ratio",
    "connector_request_budget_used_ratio per installation (CONNECTOR_METRICS_COMPANY_LABELS)",
    ["company_id"],
    registry=REGISTRY,
)
