"""`serve --role`: the worker answers only health and metrics; the API never runs syncs."""

from __future__ import annotations

import time

from app.main import Role
from tests.factories import RunningService, install_event, make_settings


class TestWorkerRole:
    def test_serves_only_livez_readyz_and_metrics(self, database_url: str) -> None:
        with RunningService(make_settings(database_url=database_url), Role.worker) as worker:
            for path in ("/livez", "/readyz", "/metrics"):
                assert worker.anonymous.get(path).status_code == 200, path
            assert worker.anonymous.get("/readyz").json()["checks"]["scheduler"] == "ok"
            for path in ("/admin/v1/installations", "/openapi.json", "/docs", "/redoc"):
                assert worker.admin.get(path).status_code == 404, path
            assert worker.callback(install_event(5)).status_code == 404


class TestApiRole:
    def test_queues_runs_but_never_runs_them(self, database_url: str) -> None:
        settings = make_settings(database_url=database_url, procore_api_url="http://127.0.0.1:9")
        with RunningService(settings, Role.api) as api:
            assert api.callback(install_event(5)).status_code == 202
            run_id = api.latest_run_id(5)
            time.sleep(1.5)  # three scheduler ticks of a worker
            assert api.admin.get(f"/admin/v1/syncs/{run_id}").json()["status"] == "queued"
            ready = api.anonymous.get("/readyz").json()
            assert ready["status"] == "ready" and "scheduler" not in ready["checks"]
            assert api.anonymous.get("/openapi.json").status_code == 200


class TestReadiness:
    def test_metrics_report_readiness(self, database_url: str) -> None:
        with RunningService(make_settings(database_url=database_url)) as service:
            time.sleep(0.6)  # the first tick
            assert "connector_ready 1.0" in service.anonymous.get("/metrics").text
