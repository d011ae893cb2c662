"""The receiver: authentication before parsing, size and shape checks, dedupe, drops."""

from __future__ import annotations

import re
from typing import Any

import pytest

from procore_sim.server import SimulatorServer
from tests.factories import query_rows, wait_until
from tests.webhooks.conftest import HookedService, deliver, events, sim_hook


def payload(company_id: int, project_id: int | None, /, **fields: Any) -> dict[str, Any]:
    """A v2.0 delivery as Procore sends it."""
    body = {
        "id": 1_099_511_700_001,
        "ulid": "01JD8X4Q6N3V0K5Z2M7T9R1B3C",
        "timestamp": "2026-12-01T09:00:00.123456Z",
        "user_id": 42,
        "company_id": company_id,
        "project_id": project_id,
        "api_version": "v2.0",
        "event_type": "update",
        "resource_name": "RFIs",
        "resource_id": 12345,
        "metadata": {"source_user_id": 42, "source_application_id": None},
    }
    body.update(fields)
    return body


def metric(service: HookedService, name: str, **labels: str) -> float:
    """One sample of the service's /metrics (0 when absent)."""
    text = service.anonymous.get("/metrics").text
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = rf"^{re.escape(name)}(?:\{{{re.escape(wanted)}\}})? ([0-9.e+-]+)$"
    for line in text.splitlines():
        found = re.match(pattern, line)
        if found:
            return float(found.group(1))
    return 0.0


@pytest.fixture
def installed(hooked: HookedService, sim: SimulatorServer) -> tuple[int, int, str]:
    """An installed company: (company id, a project id, the Authorization value Procore has)."""
    company_id = sim.state.company_ids()[0]
    assert hooked.install(company_id)["status"] == "succeeded"
    hook = sim_hook(sim, company_id)
    assert hook is not None
    return (
        company_id,
        sim.state.project_ids(company_id)[0],
        hook["destination_headers"]["Authorization"],
    )


class TestAuthentication:
    @pytest.mark.parametrize("header", [None, "", "Bearer nope", "Bearer whk_" + "x" * 43])
    def test_a_missing_or_wrong_header_is_401_and_stores_nothing(
        self,
        hooked: HookedService,
        installed: tuple[int, int, str],
        database_url: str,
        header: str | None,
    ) -> None:
        company_id, project_id, _ = installed
        before = metric(hooked, "connector_webhook_deliveries_refused_total", reason="unauthorized")
        answer = deliver(hooked, company_id, payload(company_id, project_id), header)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"
        assert events(database_url, company_id) == []
        after = metric(hooked, "connector_webhook_deliveries_refused_total", reason="unauthorized")
        assert after == before + 1

    def test_the_header_of_another_company_is_refused(
        self,
        hooked: HookedService,
        installed: tuple[int, int, str],
        sim: SimulatorServer,
        database_url: str,
    ) -> None:
        _, _, header = installed
        other = sim.state.company_ids()[1]  # never installed: it accepts nothing
        answer = deliver(hooked, other, payload(other, None), header)
        assert answer.status_code == 401
        assert query_rows(database_url, "SELECT COUNT(*) FROM webhook_events") == [(0,)]

    def test_an_unauthenticated_garbage_body_is_401_not_400(
        self, hooked: HookedService, installed: tuple[int, int, str], database_url: str
    ) -> None:
        company_id, _, _ = installed
        answer = deliver(hooked, company_id, b"{not json", "Bearer wrong")
        assert answer.status_code == 401  # the body is never parsed for a stranger


class TestValidation:
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            (b"{not json", "body"),
            (b"[]", "body"),
            ({"timestamp": None}, "timestamp"),
            ({"timestamp": "yesterday"}, "timestamp"),
            ({"event_type": "destroy"}, "event_type"),
            ({"resource_id": "12"}, "resource_id"),
            ({"company_id": -1}, "company_id"),
            ({"ulid": "short"}, "ulid"),
            ({"ulid": None, "id": None}, "an event needs its ulid or its id"),
        ],
    )
    def test_a_malformed_delivery_is_a_clear_400(
        self,
        hooked: HookedService,
        installed: tuple[int, int, str],
        database_url: str,
        change: Any,
        field: str,
    ) -> None:
        company_id, project_id, header = installed
        content: Any = change
        if isinstance(change, dict):
            content = payload(company_id, project_id, **change)
            content = {
                key: value
                for key, value in content.items()
                if value is not None or (key not in change or key in ("ulid", "id"))
            }
        answer = deliver(hooked, company_id, content, header)
        assert answer.status_code == 400, answer.text
        message = answer.json()["error"]["message"]
        assert message.startswith("not a Procore v2.0 webhook delivery")
        assert field in message
        assert events(database_url, company_id) == []

    def test_an_oversized_body_is_413(
        self, hooked: HookedService, installed: tuple[int, int, str], database_url: str
    ) -> None:
        company_id, project_id, header = installed
        big = payload(company_id, project_id, metadata={"padding": "x" * 70_000})
        answer = deliver(hooked, company_id, big, header)
        assert answer.status_code == 413
        assert events(database_url, company_id) == []


class TestStoring:
    def test_a_delivery_is_stored_once_and_its_redelivery_is_a_duplicate(
        self, hooked: HookedService, installed: tuple[int, int, str], database_url: str
    ) -> None:
        company_id, project_id, header = installed
        body = payload(company_id, project_id)
        first = deliver(hooked, company_id, body, header)
        again = deliver(hooked, company_id, body, header)
        assert first.status_code == again.status_code == 200
        assert first.json() == {"status": "stored", "reason": None}
        assert again.json() == {"status": "duplicate", "reason": None}
        stored = events(database_url, company_id)
        assert [(e[0], e[1], e[2], e[3]) for e in stored] == [
            ("01JD8X4Q6N3V0K5Z2M7T9R1B3C", "rfis", 12345, "update")
        ]

    def test_an_event_without_ulid_is_deduplicated_by_its_id(
        self, hooked: HookedService, installed: tuple[int, int, str], database_url: str
    ) -> None:
        company_id, project_id, header = installed
        body = payload(company_id, project_id, ulid=None, id=77)
        assert deliver(hooked, company_id, body, header).json()["status"] == "stored"
        assert deliver(hooked, company_id, body, header).json()["status"] == "duplicate"
        assert [e[0] for e in events(database_url, company_id)] == ["id:77"]

    @pytest.mark.parametrize(
        ("fields", "reason"),
        [
            ({"resource_name": "Direct Costs"}, "unknown_resource"),
            ({"resource_name": "Submittals"}, "unselected_stream"),
            ({"company_id": 4242}, "unknown_company"),
            ({"project_id": None}, "no_project"),
        ],
    )
    def test_authenticated_events_the_connector_does_not_read_are_dropped_and_counted(
        self,
        hooked: HookedService,
        installed: tuple[int, int, str],
        database_url: str,
        fields: dict[str, Any],
        reason: str,
    ) -> None:
        company_id, project_id, header = installed
        before = metric(hooked, "connector_webhook_events_dropped_total", reason=reason)
        answer = deliver(hooked, company_id, payload(company_id, project_id, **fields), header)
        assert answer.status_code == 200
        assert answer.json() == {"status": "dropped", "reason": reason}
        assert events(database_url, company_id) == []
        assert metric(hooked, "connector_webhook_events_dropped_total", reason=reason) == before + 1

    def test_events_of_an_uninstalled_company_are_dropped(
        self, hooked: HookedService, installed: tuple[int, int, str], database_url: str
    ) -> None:
        company_id, project_id, header = installed
        answer = hooked.admin.delete(f"/admin/v1/installations/{company_id}")
        assert answer.status_code == 200, answer.text
        # A delivery still in flight is answered 200 and dropped (or, in the few seconds the
        # receiver trusts what it knew, stored and then closed without a run).
        sent = iter(range(1, 10_000))

        def dropped() -> bool:
            body = payload(company_id, project_id, ulid=None, id=next(sent))
            reply = deliver(hooked, company_id, body, header)
            assert reply.status_code == 200
            return bool(reply.json() == {"status": "dropped", "reason": "uninstalled"})

        wait_until(dropped, timeout=20, message="a dropped delivery")
        wait_until(
            lambda: all(
                e[5] is not None and e[6] == "closed" for e in events(database_url, company_id)
            ),
            message="stored events closed",
        )
        assert not [r for r in hooked.runs(company_id) if r["trigger"] == "webhook"]
