"""The audit trail (issue 16 item 3): every change, failed sign-in, uninstall and purge is
recorded with who, what, target, when, from where and before/after, never a secret; listed
by GET /admin/v1/audit, filtered and paged like the other lists."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.audit.service import REDACTED, redact
from procore_sim.server import SimulatorServer
from tests.console.helpers import OPERATOR_TOKEN, ROLE_TOKENS, console_client, sign_in
from tests.factories import RunningService

DESTINATION_PASSWORD = "warehouse-password-7f3a"


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"admin_tokens": ROLE_TOKENS}


def entries(service: RunningService, **params: Any) -> list[dict[str, Any]]:
    answer = service.admin.get("/admin/v1/audit", params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json())


class TestRecordedChanges:
    def test_each_api_change_is_recorded_with_who_what_where_and_no_secret(
        self, service: RunningService, sim: SimulatorServer, tmp_path: Any
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        operator = httpx.Client(
            base_url=service.url, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        )
        run_id = operator.post(f"/admin/v1/installations/{company_id}/syncs").json()["run_id"]
        service.wait_for_run(run_id)
        assert (
            operator.patch(
                f"/admin/v1/installations/{company_id}", json={"paused": True}
            ).status_code
            == 200
        )
        operator.close()
        other = f"sqlite:///{tmp_path / 'other.db'}"
        patched = service.admin.patch(
            f"/admin/v1/installations/{company_id}",
            json={"schedule": "every 2h", "destination_url": other},
        )
        assert patched.status_code == 200, patched.text
        http_destination = f"https://etl:{DESTINATION_PASSWORD}@receiver.example.com/hook"
        assert (
            service.admin.patch(
                f"/admin/v1/installations/{company_id}", json={"destination_url": http_destination}
            ).status_code
            == 200
        )
        secret = service.admin.post(
            f"/admin/v1/installations/{company_id}/destination/signing-secret"
        ).json()["signing_secret"]

        trail = entries(service)
        actions = [(e["action"], e["actor"], e["source"]) for e in trail]
        assert actions[:5] == [
            ("signing_secret.rotate", "token-1", "api"),
            ("installation.update", "token-1", "api"),
            ("installation.update", "token-1", "api"),
            ("installation.pause", "oncall", "api"),
            ("sync.queue", "oncall", "api"),
        ]
        for entry in trail[:5]:
            assert entry["company_id"] == company_id
            assert entry["ip"] == "127.0.0.1"
            assert entry["recorded_at"].endswith("Z")
        assert trail[4]["target"] == f"run {run_id}" and trail[4]["role"] == "operator"
        assert trail[3]["before"] == {"paused": False} and trail[3]["after"] == {"paused": True}
        schedule = trail[2]
        assert schedule["before"]["schedule"] == "every 1h"
        assert schedule["after"]["schedule"] == "every 2h"
        assert schedule["after"]["destination"].endswith("other.db")
        text = json.dumps(trail)
        assert DESTINATION_PASSWORD not in text and secret not in text
        assert "receiver.example.com" in trail[1]["after"]["destination"]

    def test_uninstall_and_purge_are_recorded(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        answer = service.admin.delete(
            f"/admin/v1/installations/{company_id}", params={"purge": "true"}
        )
        assert answer.status_code == 200, answer.text
        trail = entries(service, company_id=company_id)
        assert [e["action"] for e in trail[:2]] == ["installation.purge", "installation.uninstall"]
        assert trail[0]["after"]["purged"] is True
        assert sum(trail[0]["after"]["deleted_rows"].values()) > 0
        assert trail[1]["before"] == {"status": "active"}
        assert trail[1]["after"] == {"status": "uninstalled"}

    def test_refused_changes_leave_no_entry(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        service.install_and_sync(company_id)
        before = entries(service)
        bad = service.admin.patch(
            f"/admin/v1/installations/{company_id}", json={"schedule": "every 3 fortnights"}
        )
        assert bad.status_code == 400
        assert entries(service) == before

    def test_credentials_replacement_never_records_the_secret(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        service.install_and_sync(company_id)
        config = sim.config
        answer = service.admin.put(
            f"/admin/v1/installations/{company_id}/credentials",
            json={"client_id": config.client_id, "client_secret": config.client_secret},
        )
        assert answer.status_code == 200, answer.text
        entry = entries(service, action="credentials.replace")[0]
        assert entry["after"]["client_id"] == config.client_id
        assert entry["after"]["client_secret"] == REDACTED
        assert config.client_secret not in json.dumps(entry)


class TestConsoleEntries:
    def test_sign_ins_failed_and_good_are_recorded(self, service: RunningService) -> None:
        with console_client(service.url) as browser:
            refused = sign_in(browser, "not-a-token-at-all-but-long-enough-to-try")
            assert refused.status_code == 401
            assert sign_in(browser, OPERATOR_TOKEN).status_code == 303
        failed = entries(service, action="console.sign_in_failed")
        assert len(failed) == 1
        assert failed[0]["actor"] == "anonymous" and failed[0]["ip"] == "127.0.0.1"
        assert "not-a-token" not in json.dumps(failed)
        good = entries(service, action="console.sign_in")
        assert [(e["actor"], e["role"], e["source"]) for e in good] == [
            ("oncall", "operator", "console")
        ]


class TestListing:
    def test_filters_and_link_paging(self, service: RunningService) -> None:
        with console_client(service.url) as browser:
            for _ in range(5):
                sign_in(browser, "wrong-token-wrong-token-wrong-token")
            sign_in(browser, OPERATOR_TOKEN)
        page = service.admin.get("/admin/v1/audit", params={"limit": 2})
        first = page.json()
        assert len(first) == 2 and first[0]["id"] > first[1]["id"]
        link = page.headers["link"]
        assert link == f'</admin/v1/audit?before={first[1]["id"]}&limit=2>; rel="next"'
        seen = [e["id"] for e in first]
        url: str | None = link[1 : link.index(">")]
        while url:
            answer = service.admin.get(url)
            seen += [e["id"] for e in answer.json()]
            header = answer.headers.get("link")
            url = header[1 : header.index(">")] if header else None
        assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 6
        assert len(entries(service, actor="anonymous")) == 5
        assert [e["actor"] for e in entries(service, actor="oncall")] == ["oncall"]
        assert entries(service, company_id=12345) == []
        filtered = service.admin.get(
            "/admin/v1/audit", params={"action": "console.sign_in_failed", "limit": 4}
        )
        assert "action=console.sign_in_failed" in filtered.headers["link"]
        bad = service.admin.get("/admin/v1/audit", params={"action": "nonsense"})
        assert bad.status_code == 400


class TestRedaction:
    def test_secret_fields_and_url_passwords_are_hidden(self) -> None:
        clean = redact(
            {
                "client_id": "abc",
                "client_secret": "s3cret",
                "signing_secret": "whsec_x",
                "note": "postgresql://etl:hunter2@db/warehouse",
                "nested": {"token": "t", "ok": 1},
                "none": None,
            }
        )
        assert clean == {
            "client_id": "abc",
            "client_secret": REDACTED,
            "signing_secret": REDACTED,
            "note": "postgresql://etl:***@db/warehouse",
            "nested": {"token": REDACTED, "ok": 1},
            "none": None,
        }
        assert redact(None) is None
