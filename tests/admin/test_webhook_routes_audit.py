"""The webhook settings routes check the caller's role and leave audit entries, as every
admin change does (SPEC section 4)."""

from __future__ import annotations

from procore_sim.server import SimulatorServer
from tests.factories import RunningService


def test_webhook_changes_are_audited(service: RunningService, sim: SimulatorServer) -> None:
    company_id = sim.state.company_ids()[0]
    assert service.install_and_sync(company_id)["status"] == "succeeded"
    base = f"/admin/v1/installations/{company_id}"
    changed = service.admin.patch(f"{base}/webhooks", json={"reconcile_interval_seconds": 7200})
    assert changed.status_code == 200, changed.text
    rotated = service.admin.post(f"{base}/webhooks/secret")
    assert rotated.status_code == 202, rotated.text
    assert "whk_" not in rotated.text  # the secret itself is never shown
    trail = service.admin.get("/admin/v1/audit", params={"company_id": company_id}).json()
    actions = [entry["action"] for entry in trail]
    assert actions[:2] == ["webhook_secret.rotate", "webhooks.update"]
    assert trail[1]["after"] == {"reconcile_interval_seconds": 7200}
    assert "whk_" not in str(trail)
