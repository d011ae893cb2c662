"""Alerts reach people (issue 16 item 4): a signed webhook and a Slack-style URL on loopback
receive each incident once, not once per run, and a new incident after the last one cleared."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from app.alerts import service as alerts
from app.core.database import unit_of_work
from app.core.migrations import upgrade_to_head
from app.destinations.signing import generate_signing_secret
from app.installations import service as installations
from app.runs.models import RunStatus
from app.runs.progress import RunProgress, StreamStats
from app.runtime import Runtime, build_runtime
from procore_sim.server import SimulatorServer
from tests.destinations.receiver import Receiver
from tests.factories import RunningService, install_event, make_settings, wait_until

SECRET = generate_signing_secret()
BROKEN_DESTINATION = "postgresql://etl:pw@127.0.0.1:9/warehouse"


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    """A receiver that checks the Standard Webhooks signature with the alert secret."""
    receiver = Receiver(SECRET).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def slack() -> Iterator[Receiver]:
    """A Slack-compatible incoming webhook (it checks no signature: Slack's carry none)."""
    receiver = Receiver(generate_signing_secret()).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def service_overrides(webhook: Receiver) -> dict[str, Any]:
    return {
        "alert_webhook_url": webhook.url,
        "alert_webhook_secret": SECRET,
        "alert_failure_threshold": 2,
    }


def sync_now(service: RunningService, company_id: int) -> dict[str, Any]:
    answer = service.admin.post(f"/admin/v1/installations/{company_id}/syncs")
    assert answer.status_code == 202, answer.text
    return service.wait_for_run(answer.json()["run_id"])


def alerts_of(receiver: Receiver, kind: str) -> list[dict[str, Any]]:
    return [d.payload for d in receiver.deliveries if d.payload.get("kind") == kind]


class TestRunFailures:
    def test_sent_once_after_n_failures_and_again_after_recovery(
        self, service: RunningService, sim: SimulatorServer, webhook: Receiver, destination_url: str
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        service.admin.patch(
            f"/admin/v1/installations/{company_id}", json={"destination_url": BROKEN_DESTINATION}
        )
        assert sync_now(service, company_id)["status"] == "failed"
        assert alerts_of(webhook, "run_failures") == []  # one failure is not an incident yet
        assert sync_now(service, company_id)["status"] == "failed"
        wait_until(lambda: alerts_of(webhook, "run_failures"), message="the alert")
        assert sync_now(service, company_id)["status"] == "failed"
        sent = alerts_of(webhook, "run_failures")
        assert len(sent) == 1, sent  # once per incident, not once per run
        alert = sent[0]
        assert alert["company_id"] == company_id and alert["type"] == "connector.alert"
        assert "2 runs in a row failed" in alert["summary"]
        assert "pw@" not in str(alert)
        assert all(d.signature_error is None for d in webhook.deliveries)
        delivery = webhook.deliveries[0]
        assert delivery.headers["webhook-id"] == f"alert_{alert['incident_id']}"

        # A success closes the incident; the next streak is a new one, sent again.
        service.admin.patch(
            f"/admin/v1/installations/{company_id}", json={"destination_url": destination_url}
        )
        assert sync_now(service, company_id)["status"] == "succeeded"
        service.admin.patch(
            f"/admin/v1/installations/{company_id}", json={"destination_url": BROKEN_DESTINATION}
        )
        sync_now(service, company_id)
        sync_now(service, company_id)
        wait_until(lambda: len(alerts_of(webhook, "run_failures")) == 2, message="a 2nd alert")
        first, second = alerts_of(webhook, "run_failures")
        assert first["incident_id"] != second["incident_id"]


class TestLifecycle:
    def test_disconnected_and_rejected_credentials_are_sent(
        self, service: RunningService, sim: SimulatorServer, webhook: Receiver
    ) -> None:
        first, second = sim.state.company_ids()[:2]
        assert service.install_and_sync(first)["status"] == "succeeded"
        sim.state.disconnect_company(first)
        sync_now(service, first)
        wait_until(lambda: alerts_of(webhook, "installation_lost"), message="the lost alert")
        lost = alerts_of(webhook, "installation_lost")[0]
        assert lost["company_id"] == first and "disconnected" in lost["summary"]

        answer = service.callback(
            install_event(second, client_id="not-a-client", client_secret="wrong-secret")
        )
        assert answer.status_code == 202
        service.wait_for_run(service.latest_run_id(second))
        wait_until(lambda: alerts_of(webhook, "credentials_rejected"), message="credentials")
        rejected = alerts_of(webhook, "credentials_rejected")
        assert len(rejected) == 1 and rejected[0]["company_id"] == second
        assert "wrong-secret" not in str(rejected)

    def test_admin_uninstall_is_sent_once(
        self, service: RunningService, sim: SimulatorServer, webhook: Receiver
    ) -> None:
        company_id = sim.state.company_ids()[0]
        service.install_and_sync(company_id)
        assert service.admin.delete(f"/admin/v1/installations/{company_id}").status_code == 200
        assert service.admin.delete(f"/admin/v1/installations/{company_id}").status_code == 200
        wait_until(lambda: alerts_of(webhook, "installation_lost"), message="the alert")
        assert len(alerts_of(webhook, "installation_lost")) == 1


class TestDeliveryAndGuard:
    @pytest.fixture
    async def runtime(
        self, database_url: str, webhook: Receiver, slack: Receiver
    ) -> AsyncIterator[Runtime]:
        await asyncio.to_thread(upgrade_to_head, database_url)
        settings = make_settings(
            database_url=database_url,
            alert_webhook_url=webhook.url,
            alert_webhook_secret=SECRET,
            alert_slack_webhook_url=slack.url,
        )
        runtime = build_runtime(settings)
        try:
            yield runtime
        finally:
            await runtime.aclose()

    async def test_delete_guard_trip_once_then_closed(
        self, runtime: Runtime, webhook: Receiver, slack: Receiver
    ) -> None:
        async with unit_of_work(runtime.sessions) as session:
            await installations.install(session, runtime, company_id=41, company_name="Guarded")
        tripped = RunProgress(
            streams={"rfis": StreamStats(delete_guard="would delete 80 of 100 known records")}
        )
        await alerts.after_run(runtime, 41, RunStatus.succeeded, tripped)
        await alerts.after_run(runtime, 41, RunStatus.succeeded, tripped)
        guard = alerts_of(webhook, "delete_guard")
        assert len(guard) == 1 and "80 of 100" in guard[0]["summary"]
        assert "Guarded (41)" in guard[0]["title"]
        assert len(slack.deliveries) == 1
        assert "Delete guard tripped" in slack.deliveries[0].payload["text"]
        await alerts.after_run(runtime, 41, RunStatus.succeeded, RunProgress())
        await alerts.after_run(runtime, 41, RunStatus.succeeded, tripped)
        assert len(alerts_of(webhook, "delete_guard")) == 2

    async def test_a_refused_alert_is_sent_at_the_next_evaluation(
        self, runtime: Runtime, webhook: Receiver, slack: Receiver
    ) -> None:
        async with unit_of_work(runtime.sessions) as session:
            await installations.install(session, runtime, company_id=42, company_name="Flaky")
        tripped = RunProgress(streams={"rfis": StreamStats(delete_guard="too many")})
        webhook.answer_next(503)
        slack.answer_next(500)
        await alerts.after_run(runtime, 42, RunStatus.failed, tripped)
        assert len(webhook.deliveries) == 1 and len(slack.deliveries) == 1
        await alerts.after_run(runtime, 42, RunStatus.failed, tripped)
        assert len(alerts_of(webhook, "delete_guard")) == 2  # retried, now accepted
        await alerts.after_run(runtime, 42, RunStatus.failed, tripped)
        assert len(alerts_of(webhook, "delete_guard")) == 2  # and not again
