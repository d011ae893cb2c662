"""Signing in to the console: cookie flags, CSRF on every form, sign-out, expired sessions."""

from __future__ import annotations

from typing import Any

import pytest

from procore_sim.server import SimulatorServer
from tests.console.helpers import (
    OPERATOR_TOKEN,
    ROLE_TOKENS,
    VIEWER_TOKEN,
    console_client,
    csrf_of,
    post_form,
    sign_in,
)
from tests.factories import RunningService, execute, query_rows


@pytest.fixture
def service_overrides() -> dict[str, Any]:
    return {"admin_tokens": ROLE_TOKENS}


class TestSignIn:
    def test_pages_need_a_session_and_sign_in_returns_to_them(
        self, service: RunningService
    ) -> None:
        with console_client(service.url) as browser:
            answer = browser.get("/console/runs?status=failed")
            assert answer.status_code == 303
            assert answer.headers["location"] == (
                "/console/sign-in?next=%2Fconsole%2Fruns%3Fstatus%3Dfailed"
            )
            assert browser.get("/console/runs/abc.json").status_code == 401
            form = browser.get(answer.headers["location"])
            signed = browser.post(
                "/console/sign-in",
                data={
                    "csrf": csrf_of(form.text),
                    "token": VIEWER_TOKEN,
                    "next": "/console/runs?status=failed",
                },
            )
            assert signed.status_code == 303
            assert signed.headers["location"] == "/console/runs?status=failed"
            assert browser.get("/console/runs?status=failed").status_code == 200

    def test_cookie_is_httponly_strict_and_secure_behind_tls(self, service: RunningService) -> None:
        with console_client(service.url) as browser:
            answer = sign_in(browser, OPERATOR_TOKEN)
            cookie = answer.headers["set-cookie"].lower()
            assert "connector_session=" in cookie
            assert "httponly" in cookie and "samesite=strict" in cookie
            assert "path=/console" in cookie and "secure" not in cookie
        # uvicorn trusts X-Forwarded-Proto from loopback, as from a TLS-terminating proxy.
        with console_client(service.url, headers={"X-Forwarded-Proto": "https"}) as browser:
            answer = sign_in(browser, OPERATOR_TOKEN)
            assert "secure" in answer.headers["set-cookie"].lower()

    def test_a_wrong_token_or_a_missing_csrf_signs_nobody_in(self, service: RunningService) -> None:
        with console_client(service.url) as browser:
            wrong = sign_in(browser, "z" * 8 + OPERATOR_TOKEN)
            assert wrong.status_code == 401 and "not one of the service" in wrong.text
            assert "connector_session" not in wrong.headers.get("set-cookie", "")
            browser.get("/console/sign-in")
            no_csrf = browser.post("/console/sign-in", data={"token": OPERATOR_TOKEN})
            assert no_csrf.status_code == 403
            assert browser.get("/console/installations").status_code == 303

    def test_redirects_after_sign_in_stay_in_the_console(self, service: RunningService) -> None:
        with console_client(service.url) as browser:
            for target in ("https://evil.example/", "//evil.example/x", "/admin/v1/audit"):
                answer = sign_in(browser, VIEWER_TOKEN, next_path=target)
                assert answer.headers["location"] == "/console/installations", target


class TestCsrf:
    def test_every_form_carries_a_token_and_actions_without_it_are_refused(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        assert service.install_and_sync(company_id)["status"] == "succeeded"
        with console_client(service.url, OPERATOR_TOKEN) as browser:
            page = browser.get(f"/console/installations/{company_id}").text
            forms = page.count("<form")
            assert forms >= 4 and page.count('name="csrf"') == forms
            runs_before = len(service.admin.get("/admin/v1/syncs").json())
            for data in ({}, {"csrf": "forged"}):
                refused = browser.post(f"/console/installations/{company_id}/sync", data=data)
                assert refused.status_code == 403 and "CSRF" in refused.text
            assert len(service.admin.get("/admin/v1/syncs").json()) == runs_before
            # Another session's token is not this session's.
            with console_client(service.url, OPERATOR_TOKEN) as other:
                foreign = csrf_of(other.get(f"/console/installations/{company_id}").text)
            assert (
                browser.post(
                    f"/console/installations/{company_id}/sync", data={"csrf": foreign}
                ).status_code
                == 403
            )


class TestSignOutAndExpiry:
    def test_sign_out_ends_the_session_on_the_server(self, service: RunningService) -> None:
        with console_client(service.url, VIEWER_TOKEN) as browser:
            cookie = browser.cookies.get("connector_session", path="/console")
            assert cookie
            out = post_form(browser, "/console/installations", "/console/sign-out")
            assert out.status_code == 200 and "Signed out" in out.text
        with console_client(service.url, cookies={"connector_session": cookie}) as replay:
            answer = replay.get("/console/installations")
            assert answer.status_code == 303 and answer.headers["location"] == "/console/expired"
        actions = [e["action"] for e in service.admin.get("/admin/v1/audit").json()]
        assert actions[:2] == ["console.sign_out", "console.sign_in"]

    def test_an_expired_session_gets_a_clear_page(
        self, service: RunningService, database_url: str
    ) -> None:
        with console_client(service.url, OPERATOR_TOKEN) as browser:
            assert browser.get("/console/installations").status_code == 200
            execute(database_url, "UPDATE console_sessions SET expires_at = created_at")
            answer = browser.get("/console/health")
            assert answer.status_code == 303 and answer.headers["location"] == "/console/expired"
            assert "connector_session=" in answer.headers["set-cookie"]
            page = browser.get("/console/expired")
            assert page.status_code == 401 and "Your session has ended" in page.text
            live = browser.get("/console/runs/abc.json")
            assert live.status_code in (401,)
        assert query_rows(database_url, "SELECT count(*) FROM console_sessions") == [(0,)]

    def test_a_session_idle_too_long_has_ended(
        self, service: RunningService, database_url: str
    ) -> None:
        with console_client(service.url, OPERATOR_TOKEN) as browser:
            execute(
                database_url,
                "UPDATE console_sessions SET last_seen_at = :old",
                old="2000-01-01 00:00:00",
            )
            assert browser.get("/console/installations").headers["location"] == "/console/expired"
