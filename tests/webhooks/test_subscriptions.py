"""Subscriptions: one hook per installation with the selected streams' triggers, reconciled
idempotently, following stream changes, rotated secrets and uninstalls; polling without the
permission."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from procore_sim.server import SimulatorServer
from tests.factories import callback_event, execute
from tests.webhooks.conftest import HookedService, deliver, sim_hook, wait_for
from tests.webhooks.test_receiver import payload


def triggers(sim: SimulatorServer, hook_id: int) -> set[tuple[str, str]]:
    """(resource_name, event_type) of a hook's triggers in the simulator."""
    return {
        (t.resource_name, t.event_type)
        for t in sim.state.webhooks.triggers.values()
        if t.hook_id == hook_id
    }


def wanted(*resources: str) -> set[tuple[str, str]]:
    return {(r, e) for r in resources for e in ("create", "update", "delete")}


def check_now(hooked: HookedService, company_id: int) -> dict[str, Any]:
    """Makes the subscription due and waits for the periodic check to pass over it."""
    before = hooked.freshness(company_id)["webhooks"]["checked_at"]
    execute(
        hooked.settings.database_url,
        "UPDATE webhook_subscriptions SET next_check_at = :due WHERE company_id = :cid",
        due=datetime(2000, 1, 1),
        cid=company_id,
    )
    wait_for(
        lambda: hooked.freshness(company_id)["webhooks"]["checked_at"] != before,
        message="a subscription check",
    )
    view: dict[str, Any] = hooked.freshness(company_id)["webhooks"]
    return view


class TestSubscribing:
    def test_install_makes_one_hook_with_the_selected_streams_triggers(
        self, hooked: HookedService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        run = hooked.install(company_id)
        assert run["status"] == "succeeded", run["error"]
        hook = sim_hook(sim, company_id)
        assert hook is not None
        assert hook["destination_url"] == f"{hooked.url}/webhooks/procore/{company_id}"
        assert hook["namespace"] == "procore-dmsa-connector"
        secret = hook["destination_headers"]["Authorization"]
        assert secret.startswith("Bearer whk_") and len(secret) > 45
        assert triggers(sim, hook["id"]) == wanted(
            "Projects", "Company Users", "RFIs", "Change Events"
        )
        view = hooked.freshness(company_id)["webhooks"]
        assert view["status"] == "active" and view["hook_id"] == hook["id"]
        assert set(view["covered_streams"]) == {"projects", "users", "rfis", "change_events"}
        # The hook existed before the first run's window opened: nothing to read again.
        covered_since = min(view["covered_streams"].values())
        assert covered_since < run["started_at"] or covered_since <= run["finished_at"]
        # The secret never shows in the admin API.
        assert "whk_" not in hooked.admin.get(f"/admin/v1/installations/{company_id}").text
        assert "whk_" not in str(hooked.freshness(company_id))

    def test_reconciling_again_changes_nothing(
        self, hooked: HookedService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        hooked.install(company_id)
        hook = sim_hook(sim, company_id)
        assert hook is not None
        first = triggers(sim, hook["id"])
        view = check_now(hooked, company_id)
        again = sim_hook(sim, company_id)
        assert again == hook and triggers(sim, hook["id"]) == first
        assert view["status"] == "active" and view["hook_id"] == hook["id"]

    def test_a_lost_trigger_and_a_stray_hook_are_repaired(
        self, hooked: HookedService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        hooked.install(company_id)
        hook = sim_hook(sim, company_id)
        assert hook is not None
        hub = sim.state.webhooks
        lost = next(t for t in hub.triggers.values() if t.resource_name == "RFIs")
        hub.delete_trigger((company_id, None), hook["id"], lost.id)
        stray = hub.create_hook(
            (company_id, None),
            {
                "hook": {
                    "api_version": "v2",
                    "namespace": "procore-dmsa-connector",
                    "destination_url": "https://old.example.com/webhooks/procore/1",
                }
            },
            1,
        )
        check_now(hooked, company_id)
        assert stray.id not in hub.hooks
        assert triggers(sim, hook["id"]) == wanted(
            "Projects", "Company Users", "RFIs", "Change Events"
        )

    def test_triggers_follow_the_stream_selection(
        self, hooked: HookedService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        hooked.install(company_id)
        hook = sim_hook(sim, company_id)
        assert hook is not None
        answer = hooked.admin.patch(
            f"/admin/v1/installations/{company_id}", json={"streams": ["projects", "submittals"]}
        )
        assert answer.status_code == 200, answer.text
        wait_for(
            lambda: (
                set(hooked.freshness(company_id)["webhooks"]["covered_streams"])
                == {"projects", "submittals"}
            ),
            message="the new selection covered",
        )
        assert triggers(sim, hook["id"]) == wanted("Projects", "Submittals")

    def test_uninstall_removes_the_hook(self, hooked: HookedService, sim: SimulatorServer) -> None:
        company_id = sim.state.company_ids()[0]
        hooked.install(company_id)
        assert sim_hook(sim, company_id) is not None
        assert hooked.admin.delete(f"/admin/v1/installations/{company_id}").status_code == 200
        assert sim_hook(sim, company_id) is None
        view = hooked.freshness(company_id)["webhooks"]
        assert view["status"] == "removed" and view["hook_id"] is None

    def test_a_hook_left_after_uninstall_is_removed_by_the_periodic_check(
        self, hooked: HookedService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        hooked.install(company_id)
        # Procore's uninstall callback path: the installation goes, the app's credentials stay.
        body = callback_event("deleted", company_id)
        assert hooked.callback(body).status_code == 202
        wait_for(lambda: sim_hook(sim, company_id) is None, message="the hook removed")


class TestSecrets:
    def test_a_rotated_secret_reaches_procore_and_the_old_one_works_for_its_grace(
        self, hooked: HookedService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        hooked.install(company_id)
        project_id = sim.state.project_ids(company_id)[0]
        old = sim_hook(sim, company_id)
        assert old is not None
        old_header = old["destination_headers"]["Authorization"]
        answer = hooked.admin.post(f"/admin/v1/installations/{company_id}/webhooks/secret")
        assert answer.status_code == 202, answer.text
        assert "whk_" not in answer.text
        assert answer.json()["previous_valid_until"]

        def rotated() -> bool:
            hook = sim_hook(sim, company_id)
            return hook is not None and hook["destination_headers"]["Authorization"] != old_header

        wait_for(rotated, message="the new secret in Procore's hook")
        new = sim_hook(sim, company_id)
        assert new is not None and new["id"] == old["id"]
        new_header = new["destination_headers"]["Authorization"]
        for number, header in enumerate((old_header, new_header), start=1):
            body = payload(company_id, project_id, ulid=None, id=number)
            reply = deliver(hooked, company_id, body, header)
            assert reply.status_code == 200, (number, reply.text)
        assert (
            deliver(hooked, company_id, payload(company_id, project_id), "Bearer x").status_code
            == 401
        )


@pytest.fixture
def no_permission(sim: SimulatorServer) -> int:
    company_id = sim.state.company_ids()[0]
    sim.state.set_webhooks_permission(company_id, False)
    return company_id


class TestWithoutPermission:
    def test_a_company_without_the_permission_is_polled_with_a_note(
        self, hooked: HookedService, sim: SimulatorServer, no_permission: int
    ) -> None:
        company_id = no_permission
        run = hooked.install(company_id)
        assert run["status"] == "succeeded"
        view = hooked.freshness(company_id)
        assert view["webhooks"]["status"] == "no_permission"
        assert "polling only" in view["webhooks"]["note"]
        assert not any(s["covered_by_webhooks"] for s in view["streams"].values())
        assert sim_hook(sim, company_id) is None
        # A scheduled run reads every unit as before.
        again = hooked.admin.post(f"/admin/v1/installations/{company_id}/syncs")
        done = hooked.wait_for_run(again.json()["run_id"])
        assert done["status"] == "succeeded" and done["streams"]["rfis"]["units_total"] == 3

    def test_granting_the_permission_later_subscribes(
        self, hooked: HookedService, sim: SimulatorServer, no_permission: int
    ) -> None:
        company_id = no_permission
        hooked.install(company_id)
        sim.state.set_webhooks_permission(company_id, True)
        check_now(hooked, company_id)
        assert hooked.freshness(company_id)["webhooks"]["status"] == "active"
        assert sim_hook(sim, company_id) is not None
