"""Prometheus metrics of discovery, on the service's one registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from app.core.metrics import REGISTRY

DISCOVERY_PASSES = Counter(
    "connector_discovery_passes",
    "Discovery passes by outcome (normal, held: a listing that uninstalled nobody, failed)",
    ["outcome"],
    registry=REGISTRY,
)
DISCOVERY_HELD = Gauge(
    "connector_discovery_held",
    "1 while the last complete /companies listing was held (empty, or dropped more than half "
    "of the live installations) and uninstalled nobody",
    registry=REGISTRY,
)
