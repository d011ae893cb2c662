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
        assert "whsec_" not in patched.text

        rotated = service.admin.post(f"{path}/destination/signing-secret")
        assert rotated.status_code == 201
        receiver.secret = rotated.json()["signing_secret"]
        assert receiver.secret.startswith("whsec_")
        assert receiver.secret not in service.admin.get(path).text

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
