"""Liveness, readiness and Prometheus metrics endpoints (served by every role)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from sqlalchemy import text

from app.core.admin_tokens import bearer_credentials, find_token
from app.core.logging import get_logger
from app.core.metrics import READY, REGISTRY
from app.core.migrations import current_revision, head_revision
from app.credentials import key_checks
from app.deps import RuntimeDep
from app.installations import discovery
from app.runtime import Runtime
from app.scheduling.gauges import refresh_gauges

router = APIRouter(tags=["health"])
log = get_logger(__name__)


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def readiness(rt: Runtime) -> dict[str, str]:
    """Each readiness check by name: `ok`, or what is wrong."""
    checks: dict[str, str] = {}
    try:
        async with rt.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        current, head = await current_revision(rt.engine), head_revision()
        checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
        checks["migrations"] = "unknown"
    checks["encryption_key"] = await key_checks.readiness(rt.sessions, rt.keyring)
    if rt.scheduler_expected:
        limit = max(30.0, rt.settings.scheduler_tick_seconds * 3)
        age = None if rt.last_tick_at is None else time.monotonic() - rt.last_tick_at
        checks["scheduler"] = "ok" if age is not None and age <= limit else "not ticking"
    READY.set(1 if all(value == "ok" for value in checks.values()) else 0)
    return checks


@router.get("/readyz", responses={503: {"description": "not ready"}})
async def readyz(rt: RuntimeDep) -> JSONResponse:
    """Database reachable, migrations at head, encryption key usable, scheduler ticking."""
    checks = await readiness(rt)
    body: dict[str, object] = {"checks": checks}
    try:  # a held discovery listing is shown, but does not make the service unready
        held = await discovery.held_listing(rt)
    except Exception:
        held = None
    if held is not None:
        body["details"] = {"discovery": held}
    if all(value == "ok" for value in checks.values()):
        return JSONResponse({"status": "ready", **body})
    return JSONResponse({"status": "not ready", **body}, status_code=503)


TENANT_LABEL = "company_id"


class WithoutTenants(Collector):
    """The registry with `company_id` summed away, so no company is named.

    Counters and histograms are summed over companies; a per-company gauge (last success,
    schedule period) has no meaningful sum and is left out.
    """

    def __init__(self, registry: Collector) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        """The families of the registry, per-company series folded into totals."""
        for family in self.registry.collect():
            if not any(TENANT_LABEL in sample.labels for sample in family.samples):
                yield family
                continue
            if family.type == "gauge":
                continue
            totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for sample in family.samples:
                labels = tuple(
                    sorted((k, v) for k, v in sample.labels.items() if k != TENANT_LABEL)
                )
                key = (sample.name, labels)
                totals[key] = totals.get(key, 0.0) + sample.value
            folded = Metric(family.name, family.documentation, family.type, family.unit)
            folded.samples = [
                Sample(name, dict(labels), value) for (name, labels), value in totals.items()
            ]
            yield folded


@router.get("/metrics", response_class=Response)
async def metrics(
    rt: RuntimeDep, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> Response:
    """Prometheus exposition of the `connector_` metrics.

    Per-company series (label `company_id`) only for a caller with a token of
    CONNECTOR_ADMIN_TOKENS; everybody else gets them summed, naming no company.
    """
    await readiness(rt)
    try:
        await refresh_gauges(rt)
    except Exception as exc:  # the process metrics are still worth serving
        log.warning("database gauges unavailable", error=str(exc)[:200])
    presented = bearer_credentials(authorization)
    named = presented is not None and find_token(presented, rt.settings.admin_tokens) is not None
    exposition = generate_latest(REGISTRY if named else WithoutTenants(REGISTRY))
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)
