"""The Webhooks API: hooks, triggers (one and bulk), resources, deliveries list, permission."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from procore_sim import SimulatorConfig
from procore_sim.models import PUBLISHED_MODELS
from tests.simulator.conftest import Caller, running

HOOKS = "/rest/v1.0/webhooks/hooks"
SECRET_HEADER = {"Authorization": "Bearer hook-secret-5d1f"}


def call(caller: Caller, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """A Webhooks API call with the caller's token and company header."""
    return caller.http.request(method, path, json=body, headers=caller.headers())


def hook_body(url: str = "https://connector.example/hooks", **scope: int) -> dict[str, Any]:
    return {
        **scope,
        "hook": {
            "api_version": "v2",
            "namespace": "acme-sync",
            "destination_url": url,
            "destination_headers": SECRET_HEADER,
        },
    }


def make_hook(caller: Caller, **scope: int) -> dict[str, Any]:
    """A company-scoped hook unless project_id is given."""
    scope = scope or {"company_id": caller.company_id}
    response = call(caller, "POST", HOOKS, hook_body(**scope))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig.lenient(companies=2, projects=2, records=5)


class TestHooks:
    def test_create_list_update_delete(self, caller: Caller) -> None:
        cid = caller.company_id
        hook = make_hook(caller)
        assert set(hook) == set(PUBLISHED_MODELS["webhook_hooks"].fields)
        assert hook["owned_by_company_id"] == cid and hook["owned_by_project_id"] is None
        assert hook["destination_headers"] == SECRET_HEADER
        listed = call(caller, "GET", f"{HOOKS}?company_id={cid}&namespace=acme-sync").json()
        assert listed == [hook]
        assert call(caller, "GET", f"{HOOKS}?company_id={cid}&namespace=other").json() == []
        assert call(caller, "GET", f"{HOOKS}?company_id={cid}&api_version=v2").json() == [hook]
        patched = call(
            caller,
            "PATCH",
            f"{HOOKS}/{hook['id']}",
            {"company_id": cid, "hook": {"destination_url": "https://new.example/h"}},
        )
        assert patched.status_code == 200
        assert patched.json()["destination_url"] == "https://new.example/h"
        assert patched.json()["namespace"] == "acme-sync"
        deleted = call(caller, "DELETE", f"{HOOKS}/{hook['id']}", {"company_id": cid})
        assert deleted.status_code == 204
        assert call(caller, "GET", f"{HOOKS}?company_id={cid}").json() == []

    def test_project_and_company_scopes_are_separate(self, caller: Caller) -> None:
        cid = caller.company_id
        pid = caller.sim.state.project_ids(cid)[0]
        project_hook = make_hook(caller, project_id=pid)
        assert project_hook["owned_by_project_id"] == pid
        assert call(caller, "GET", f"{HOOKS}?company_id={cid}").json() == []
        assert call(caller, "GET", f"{HOOKS}?project_id={pid}").json() == [project_hook]
        gone = call(caller, "DELETE", f"{HOOKS}/{project_hook['id']}", {"company_id": cid})
        assert gone.status_code == 404

    @pytest.mark.parametrize(
        "change,field",
        [
            ({"namespace": "Acme_Sync"}, "namespace"),
            ({"destination_url": "ftp://x"}, "destination_url"),
            ({"api_version": "v9"}, "api_version"),
            ({"destination_headers": {"Authorization": 5}}, "destination_headers"),
        ],
    )
    def test_invalid_hook_is_422(self, caller: Caller, change: dict[str, Any], field: str) -> None:
        body = hook_body(company_id=caller.company_id)
        body["hook"].update(change)
        response = call(caller, "POST", HOOKS, body)
        assert response.status_code == 422
        assert field in response.json()["errors"]

    def test_scope_is_required(self, caller: Caller) -> None:
        response = call(caller, "POST", HOOKS, hook_body())
        assert response.status_code == 400
        assert "company_id or project_id" in response.json()["errors"]

    def test_project_of_another_company_is_404(self, caller: Caller) -> None:
        other = caller.sim.state.company_ids()[1]
        foreign = caller.sim.state.project_ids(other)[0]
        assert call(caller, "GET", f"{HOOKS}?project_id={foreign}").status_code == 404


class TestTriggers:
    def test_create_list_delete(self, caller: Caller) -> None:
        cid = caller.company_id
        hook = make_hook(caller)
        path = f"{HOOKS}/{hook['id']}/triggers"
        body = {
            "company_id": cid,
            "api_version": "v2",
            "trigger": {"resource_name": "RFIs", "event_type": "update"},
        }
        created = call(caller, "POST", path, body)
        assert created.status_code == 201
        trigger = created.json()
        assert set(trigger) == set(PUBLISHED_MODELS["webhook_triggers"].fields)
        assert trigger["webhook_hook_id"] == hook["id"] and trigger["company_id"] == cid
        duplicate = call(caller, "POST", path, body)
        assert duplicate.status_code == 422
        assert call(caller, "GET", f"{path}?company_id={cid}").json() == [trigger]
        gone = call(caller, "DELETE", f"{path}/{trigger['id']}", {"company_id": cid})
        assert gone.status_code == 204
        assert call(caller, "GET", f"{path}?company_id={cid}").json() == []
        again = call(caller, "DELETE", f"{path}/{trigger['id']}", {"company_id": cid})
        assert again.status_code == 404

    @pytest.mark.parametrize(
        "trigger",
        [{"resource_name": "Unicorns", "event_type": "create"}, {"resource_name": "RFIs"}],
    )
    def test_unknown_resource_or_event_is_422(self, caller: Caller, trigger: Any) -> None:
        hook = make_hook(caller)
        body = {"company_id": caller.company_id, "api_version": "v2", "trigger": trigger}
        response = call(caller, "POST", f"{HOOKS}/{hook['id']}/triggers", body)
        assert response.status_code == 422

    def test_bulk_create_200_then_207_on_partial(self, caller: Caller) -> None:
        cid = caller.company_id
        hook = make_hook(caller)
        path = f"{HOOKS}/{hook['id']}/triggers/bulk"
        good = [{"resource_name": "RFIs", "event_type": e} for e in ("create", "update", "delete")]
        made = call(
            caller, "POST", path, {"company_id": cid, "api_version": "v2", "triggers": good}
        )
        assert made.status_code == 200
        assert [t["event_type"] for t in made.json()["success"]] == ["create", "update", "delete"]
        mixed = [
            {"resource_name": "Submittals", "event_type": "create"},
            {"resource_name": "RFIs", "event_type": "create"},  # already there
            {"resource_name": "Nope", "event_type": "create"},
        ]
        partial = call(
            caller, "POST", path, {"company_id": cid, "api_version": "v2", "triggers": mixed}
        )
        assert partial.status_code == 207
        body = partial.json()
        assert [t["resource_name"] for t in body["success"]] == ["Submittals"]
        assert [f["trigger"]["resource_name"] for f in body["failed"]] == ["RFIs", "Nope"]
        listed = call(caller, "GET", f"{HOOKS}/{hook['id']}/triggers?company_id={cid}").json()
        assert len(listed) == 4

    def test_bulk_delete_200_then_207_naming_unknown_ids(self, caller: Caller) -> None:
        cid = caller.company_id
        hook = make_hook(caller)
        path = f"{HOOKS}/{hook['id']}/triggers/bulk"
        specs = [{"resource_name": "RFIs", "event_type": e} for e in ("create", "delete")]
        made = call(
            caller, "POST", path, {"company_id": cid, "api_version": "v2", "triggers": specs}
        )
        first, second = (t["id"] for t in made.json()["success"])
        removed = call(caller, "DELETE", path, {"company_id": cid, "triggers": [first]})
        assert removed.status_code == 200 and removed.json() == {"success": [first]}
        partial = call(caller, "DELETE", path, {"company_id": cid, "triggers": [second, first]})
        assert partial.status_code == 207
        assert partial.json() == {
            "success": [second],
            "failed": [{"code": "not_found", "trigger": first}],
        }

    def test_deleting_a_hook_deletes_its_triggers(self, caller: Caller) -> None:
        cid = caller.company_id
        hook = make_hook(caller)
        call(
            caller,
            "POST",
            f"{HOOKS}/{hook['id']}/triggers",
            {"company_id": cid, "trigger": {"resource_name": "RFIs", "event_type": "create"}},
        )
        call(caller, "DELETE", f"{HOOKS}/{hook['id']}", {"company_id": cid})
        assert caller.http.get("/_sim/webhooks").json()["triggers"] == []


class TestResources:
    def test_resource_names(self, caller: Caller) -> None:
        response = call(
            caller, "GET", f"/rest/v1.0/webhooks/resources?company_id={caller.company_id}"
        )
        assert response.status_code == 200
        resources = response.json()
        names = {r["resource_name"] for r in resources}
        assert {"RFIs", "Submittals", "Projects", "Company Users", "Punch Items"} <= names
        model = set(PUBLISHED_MODELS["webhook_resources"].fields)
        assert all(model <= set(r) for r in resources)


class TestPermission:
    def test_company_without_the_permission_is_403(self, caller: Caller) -> None:
        cid = caller.company_id
        make_hook(caller)
        answer = caller.http.put(
            f"/_sim/companies/{cid}/webhooks_permission", json={"granted": False}
        )
        assert answer.json() == {"company_id": cid, "webhooks_permission": False}
        for path in (
            f"{HOOKS}?company_id={cid}",
            f"/rest/v1.0/webhooks/resources?company_id={cid}",
        ):
            refused = call(caller, "GET", path)
            assert refused.status_code == 403
            assert "Webhooks API" in refused.json()["errors"]
        assert call(caller, "POST", HOOKS, hook_body(company_id=cid)).status_code == 403
        caller.http.put(f"/_sim/companies/{cid}/webhooks_permission", json={"granted": True})
        assert len(call(caller, "GET", f"{HOOKS}?company_id={cid}").json()) == 1

    def test_configured_without_the_permission(self) -> None:
        config = SimulatorConfig.lenient(companies=1, projects=1, webhooks_permission=False)
        with running(config) as caller:
            response = call(caller, "GET", f"{HOOKS}?company_id={caller.company_id}")
            assert response.status_code == 403
            assert caller.sim.state.companies()[0]["webhooks_permission"] is False

    def test_other_endpoints_are_unaffected(self, caller: Caller) -> None:
        cid = caller.company_id
        caller.sim.state.set_webhooks_permission(cid, False)
        assert caller.get("/rest/v1.1/projects", company_id=cid).status_code == 200

    def test_needs_a_token(self, http: httpx.Client, caller: Caller) -> None:
        response = http.get(f"{HOOKS}?company_id={caller.company_id}")
        assert response.status_code == 401
