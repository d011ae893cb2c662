"""Liveness, readiness and Prometheus metrics endpoints (served by every role)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.core.logging import get_logger
from app.core.metrics import READY, REGISTRY
from app.core.migrations import current_revision, head_revision
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
    try:
        rt.keyring.self_test()
        checks["encryption_key"] = "ok"
    except Exception:
        checks["encryption_key"] = "unusable"
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


@router.get("/metrics", response_class=Response)
async def metrics(rt: RuntimeDep) -> Response:
    """Prometheus exposition of the `connector_` metrics."""
    await readiness(rt)
    try:
        await refresh_gauges(rt)
    except Exception as exc:  # the process metrics are still worth serving
        log.warning("database gauges unavailable", error=str(exc)[:200])
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
