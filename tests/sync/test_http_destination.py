"""Syncing into a signed HTTP push destination, with the per-installation secret shown once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from procore_sim.server import SimulatorServer
from tests.destinations.receiver import Receiver
from tests.factories import RunningService


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"streams": "projects,rfis"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver("whsec_" + "cGxhY2Vob2xkZXItc2VjcmV0LTMyLWJ5dGVzLWxvbmc=").start()
    yield started
    started.stop()


class TestHttpDestination:
    def test_records_arrive_signed_with_the_installations_secret(
        self, service: RunningService, sim: SimulatorServer, receiver: Receiver
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        path = f"/admin/v1/installations/{company_id}"
        patched = service.admin.patch(path, json={"destination_url": receiver.url})
        assert patched.status_code == 200, patched.text
        # The change that made the secret shows it, once (SPEC section 4).
        receiver.secret = patched.json()["signing_secret"]
        assert receiver.secret.startswith("whsec_")
        assert receiver.secret not in service.admin.get(path).text
        again = service.admin.patch(path, json={"destination_url": receiver.url + "?v=2"})
        assert again.json()["signing_secret"] is None

        queued = service.admin.post(f"{path}/syncs", json={"full_refresh": True})
        run = service.wait_for_run(queued.json()["run_id"])
        assert run["status"] == "succeeded", run["error"]
        assert receiver.deliveries and all(d.signature_error is None for d in receiver.deliveries)
        pushed = {
            record["id"]
            for d in receiver.accepted()
            if d.payload["stream"] == "rfis"
            for record in d.payload["records"]
        }
        expected = {
            r["id"]
            for p in sim.state.project_ids(company_id)
            for r in sim.state.records("rfis", company_id, p)
        }
        assert pushed == expected

    def test_a_rotation_keeps_the_old_secret_valid_for_its_grace_period(
        self, service: RunningService, sim: SimulatorServer, receiver: Receiver
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        path = f"/admin/v1/installations/{company_id}"
        old = service.admin.patch(path, json={"destination_url": receiver.url}).json()
        receiver.secret = old["signing_secret"]

        rotated = service.admin.post(f"{path}/destination/signing-secret")
        assert rotated.status_code == 201, rotated.text
        new = rotated.json()["signing_secret"]
        assert new.startswith("whsec_") and new != receiver.secret
        assert rotated.json()["previous_valid_until"] is not None
        # The receiver has not switched yet: the old secret's signature still verifies.
        receiver.deliveries.clear()
        run = service.admin.post(f"{path}/syncs", json={"full_refresh": True}).json()
        assert service.wait_for_run(run["run_id"])["status"] == "succeeded"
        assert receiver.deliveries and all(d.signature_error is None for d in receiver.deliveries)
        assert all(len(d.headers["webhook-signature"].split()) == 2 for d in receiver.deliveries)
        # After switching, the new one verifies too.
        receiver.secret = new
        receiver.deliveries.clear()
        run = service.admin.post(f"{path}/syncs", json={"full_refresh": True}).json()
        assert service.wait_for_run(run["run_id"])["status"] == "succeeded"
        assert all(d.signature_error is None for d in receiver.deliveries)

    def test_an_operator_may_set_a_known_secret(
        self, service: RunningService, sim: SimulatorServer, receiver: Receiver
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        path = f"/admin/v1/installations/{company_id}"
        service.admin.patch(path, json={"destination_url": receiver.url})
        known = "whsec_" + "a25vd24tc2VjcmV0LW9mLXRoZS1vcGVyYXRvci0zMmI="
        body = {"signing_secret": known, "grace_seconds": 0}
        answer = service.admin.post(f"{path}/destination/signing-secret", json=body)
        assert answer.status_code == 201, answer.text
        assert answer.json()["signing_secret"] is None  # the operator's own: never echoed
        assert known not in answer.text
        receiver.secret = known
        run = service.admin.post(f"{path}/syncs", json={"full_refresh": True}).json()
        assert service.wait_for_run(run["run_id"])["status"] == "succeeded"
        assert receiver.deliveries and all(d.signature_error is None for d in receiver.deliveries)
        assert all(len(d.headers["webhook-signature"].split()) == 1 for d in receiver.deliveries)
        short = {"signing_secret": "whsec_QUJD"}
        refused = service.admin.post(f"{path}/destination/signing-secret", json=short)
        assert refused.status_code == 400
        assert "24 to 64 bytes" in refused.json()["error"]["message"]

    def test_a_refusing_receiver_fails_the_stream_with_its_answer(
        self, service: RunningService, sim: SimulatorServer, receiver: Receiver
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        path = f"/admin/v1/installations/{company_id}"
        service.admin.patch(path, json={"destination_url": receiver.url})
        receiver.secret = service.admin.post(f"{path}/destination/signing-secret").json()[
            "signing_secret"
        ]
        for _ in range(20):
            receiver.answer_next(400, "unknown tenant")
        run = service.wait_for_run(
            service.admin.post(f"{path}/syncs", json={"full_refresh": True}).json()["run_id"]
        )
        assert run["status"] == "failed"
        assert "unknown tenant" in run["error"]
