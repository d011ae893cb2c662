"""`POST /admin/v1/destinations/test` and `.../installations/{id}/destination/test`."""

from __future__ import annotations

from pathlib import Path

from procore_sim.server import SimulatorServer
from tests.destinations.receiver import Receiver
from tests.factories import RunningService

TEST = "/admin/v1/destinations/test"


def installed(service: RunningService, sim: SimulatorServer) -> int:
    company_id = sim.state.company_ids()[0]
    service.install_and_sync(company_id)
    return company_id


class TestDestinationTest:
    def test_a_url_and_an_installation_destination(
        self, service: RunningService, sim: SimulatorServer, tmp_path: Path
    ) -> None:
        answer = service.admin.post(TEST, json={"destination_url": f"file://{tmp_path}/out"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["ok"], body["kind"], body["error"]) == (True, "file", None)
        assert {c["name"] for c in body["checks"]} == {"reachable", "writable"}

        company_id = installed(service, sim)
        mine = service.admin.post(f"/admin/v1/installations/{company_id}/destination/test")
        assert mine.status_code == 200 and mine.json()["ok"] is True
        assert mine.json()["kind"] == "sql"

    def test_an_http_receiver_with_the_installation_secret(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = installed(service, sim)
        path = f"/admin/v1/installations/{company_id}"
        with_secret = Receiver("whsec_" + "c2VjcmV0LW9mLTMyLWJ5dGVzLWZvci10aGUtdGVzdCE=").start()
        try:
            assert (
                service.admin.patch(path, json={"destination_url": with_secret.url}).status_code
                == 200
            )
            secret = service.admin.post(f"{path}/destination/signing-secret").json()[
                "signing_secret"
            ]
            right = Receiver(secret).start()
            try:
                service.admin.patch(path, json={"destination_url": right.url})
                good = service.admin.post(f"{path}/destination/test").json()
                assert good["ok"] is True, good
                by_body = service.admin.post(TEST, json={"company_id": company_id}).json()
                assert by_body["ok"] is True
                assert len(right.deliveries) == 4  # wrong + right signature, twice; no records
            finally:
                right.stop()
            service.admin.patch(path, json={"destination_url": with_secret.url})
            bad = service.admin.post(f"{path}/destination/test").json()
            assert bad["ok"] is False
            assert bad["error"].startswith("signature_accepted: the receiver refused")
        finally:
            with_secret.stop()

    def test_bad_requests(self, service: RunningService, tmp_path: Path) -> None:
        assert service.admin.post(TEST, json={}).status_code == 400
        wrong = service.admin.post(TEST, json={"destination_url": "gopher://x/y"})
        assert wrong.status_code == 400 and "destination_url" in wrong.json()["error"]["message"]
        assert service.admin.post(TEST, json={"company_id": 999}).status_code == 404
        assert service.admin.post(TEST, json={"nope": 1}).status_code == 400
        assert service.anonymous.post(TEST, json={}).status_code == 401
        unreachable = service.admin.post(
            TEST, json={"destination_url": "postgresql://etl:hunter2@127.0.0.1:1/db"}
        )
        assert unreachable.status_code == 200 and unreachable.json()["ok"] is False
        assert "hunter2" not in unreachable.text
