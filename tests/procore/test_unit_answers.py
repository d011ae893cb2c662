"""Unit cases for odd and malformed Procore answers (respx); the sim tests cover the rest."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from app.procore import (
    AppNotConnectedError,
    InvalidClientError,
    ProcoreBadRequestError,
    ProcoreClient,
    ProcoreCredentials,
    ProcoreError,
    ProcoreNetworkError,
    ProcoreNotFoundError,
    ProcoreServerError,
    RequestStats,
    make_http_client,
)
from app.procore.errors import message_from_body

API = "https://api.test"
LOGIN = "https://login.test"
CREDS = ProcoreCredentials("client-1", "very-secret-value")
TOKEN_OK = {"access_token": "tok-1", "token_type": "bearer", "expires_in": 5400, "created_at": 0}


@pytest.fixture
async def router() -> AsyncIterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        mock.post(f"{LOGIN}/oauth/token").respond(200, json=TOKEN_OK)
        yield mock


def make_client(**kwargs: Any) -> ProcoreClient:
    options: dict[str, Any] = {"retry_base_delay": 0.001, "retry_max_delay": 0.01}
    options.update(kwargs)
    return ProcoreClient(make_http_client(), api_url=API, login_url=LOGIN, **options)


class TestErrorMessages:
    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"code": "x", "message": "Bad thing", "fields": {}, "reason": "r"}, "Bad thing"),
            ({"error": {"code": "E", "message": "Nested", "details": []}}, "Nested"),
            ({"error": "Plain error"}, "Plain error"),
            ({"message": "Msg", "error": "Err"}, "Msg"),
            (
                {
                    "error": {
                        "code": "BAD_REQUEST",
                        "message": "Invalid",
                        "details": [{"reason_code": "x", "message": "name is blank"}],
                    }
                },
                "Invalid: name is blank",
            ),
            ({"errors": {"name": ["can't be blank"]}}, "name can't be blank"),
            ({"errors": ["first", "second"]}, "first; second"),
            ("just text", "just text"),
            (None, None),
        ],
    )
    def test_body_shapes(self, body: Any, expected: str | None) -> None:
        assert message_from_body(body) == expected


class TestErrorAnswers:
    async def test_403_not_connected_raises_its_own_error(self, router: respx.MockRouter) -> None:
        route = router.get(f"{API}/rest/v1.0/projects/1/rfis").respond(
            403,
            json={"errors": "App is not connected to this company"},
            headers={"x-request-id": "req-9"},
        )
        client = make_client()
        with pytest.raises(AppNotConnectedError) as caught:
            await client.get(CREDS, "/rest/v1.0/projects/1/rfis", company_id=7)
        assert caught.value.status == 403
        assert caught.value.request_id == "req-9"
        assert route.call_count == 1

    async def test_html_error_page_becomes_a_message(self, router: respx.MockRouter) -> None:
        router.get(f"{API}/rest/v1.0/x").respond(404, text="<html>Not Found</html>")
        with pytest.raises(ProcoreNotFoundError) as caught:
            await make_client().get(CREDS, "/rest/v1.0/x", company_id=1)
        assert "Not Found" in caught.value.message

    async def test_422_is_a_bad_request_and_not_retried(self, router: respx.MockRouter) -> None:
        route = router.get(f"{API}/rest/v1.0/x").respond(422, json={"errors": {"a": "b"}})
        with pytest.raises(ProcoreBadRequestError):
            await make_client().get(CREDS, "/rest/v1.0/x", company_id=1)
        assert route.call_count == 1

    async def test_non_json_success_is_an_error(self, router: respx.MockRouter) -> None:
        router.get(f"{API}/rest/v1.0/x").respond(200, text="{truncated")
        with pytest.raises(ProcoreError, match="not JSON"):
            await make_client().get(CREDS, "/rest/v1.0/x", company_id=1)

    async def test_5xx_gives_up_after_max_attempts(self, router: respx.MockRouter) -> None:
        route = router.get(f"{API}/rest/v1.0/x").respond(502, text="bad gateway")
        stats = RequestStats()
        with pytest.raises(ProcoreServerError):
            await make_client(max_attempts=3).get(CREDS, "/rest/v1.0/x", company_id=1, stats=stats)
        assert route.call_count == 3
        assert stats.requests == 3
        assert stats.statuses == {502: 3}

    async def test_company_id_is_required_outside_companies_and_me(
        self, router: respx.MockRouter
    ) -> None:
        with pytest.raises(ValueError, match="company_id"):
            await make_client().get(CREDS, "/rest/v1.0/projects", company_id=None)


class TestTokenAnswers:
    async def test_invalid_client_is_remembered(self, router: respx.MockRouter) -> None:
        token = router.post(f"{LOGIN}/oauth/token").respond(
            401,
            json={"error": "invalid_client", "error_description": "Client authentication failed"},
        )
        api = router.get(f"{API}/rest/v1.0/x").respond(200, json=[])
        client = make_client()
        for _ in range(3):
            with pytest.raises(InvalidClientError, match="Client authentication failed"):
                await client.get(CREDS, "/rest/v1.0/x", company_id=1)
        assert token.call_count == 1
        assert api.call_count == 0
        assert client.credentials_invalid(CREDS)

    async def test_token_answer_without_access_token(self, router: respx.MockRouter) -> None:
        router.post(f"{LOGIN}/oauth/token").respond(200, json={"token_type": "bearer"})
        with pytest.raises(ProcoreError, match="access_token"):
            await make_client().get(CREDS, "/rest/v1.0/x", company_id=1)

    async def test_secret_echoed_by_the_server_is_redacted(self, router: respx.MockRouter) -> None:
        router.post(f"{LOGIN}/oauth/token").respond(
            400,
            json={
                "error": "invalid_request",
                "error_description": f"bad secret {CREDS.client_secret}",
            },
        )
        with pytest.raises(ProcoreError) as caught:
            await make_client().get(CREDS, "/rest/v1.0/x", company_id=1)
        assert CREDS.client_secret not in str(caught.value)
        assert CREDS.client_secret not in repr(caught.value)

    async def test_unreachable_login_raises_a_network_error_without_the_request(
        self, router: respx.MockRouter
    ) -> None:
        route = router.post(f"{LOGIN}/oauth/token").mock(side_effect=httpx.ConnectError("down"))
        with pytest.raises(ProcoreNetworkError) as caught:
            await make_client(max_attempts=3).get(CREDS, "/rest/v1.0/x", company_id=1)
        assert route.call_count == 3
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        assert CREDS.client_secret not in str(caught.value)


class TestOddPages:
    async def test_object_answer_is_one_record_and_stops(self, router: respx.MockRouter) -> None:
        route = router.get(f"{API}/rest/v1.0/thing").respond(200, json={"id": 1})
        pages = [p async for p in make_client().paginate(CREDS, "/rest/v1.0/thing", company_id=1)]
        assert [p.records for p in pages] == [[{"id": 1}]]
        assert pages[0].next_page is None
        assert route.call_count == 1

    async def test_v2_data_envelope(self, router: respx.MockRouter) -> None:
        router.get(f"{API}/rest/v2.0/things").respond(200, json={"data": [{"id": "1"}]})
        pages = [p async for p in make_client().paginate(CREDS, "/rest/v2.0/things", company_id=1)]
        assert pages[0].records == [{"id": "1"}]

    async def test_linkless_paging_uses_total_and_per_page(self, router: respx.MockRouter) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            page = int(request.url.params["page"])
            rows = [{"id": i} for i in range((page - 1) * 2, min(page * 2, 5))]
            return httpx.Response(200, json=rows, headers={"Total": "5", "Per-Page": "2"})

        route = router.get(f"{API}/rest/v1.0/rows").mock(side_effect=answer)
        client = make_client(per_page=2)
        pages = [p async for p in client.paginate(CREDS, "/rest/v1.0/rows", company_id=1)]
        assert [len(p.records) for p in pages] == [2, 2, 1]
        assert route.call_count == 3

    async def test_no_headers_at_all_stops_on_a_short_page(self, router: respx.MockRouter) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            page = int(request.url.params["page"])
            return httpx.Response(200, content=json.dumps([{"id": page}] * (3 if page < 3 else 1)))

        route = router.get(f"{API}/rest/v1.0/rows").mock(side_effect=answer)
        pages = [
            p
            async for p in make_client(per_page=3).paginate(CREDS, "/rest/v1.0/rows", company_id=1)
        ]
        assert [len(p.records) for p in pages] == [3, 3, 1]
        assert route.call_count == 3

    async def test_empty_page_stops_even_with_a_next_link(self, router: respx.MockRouter) -> None:
        router.get(f"{API}/rest/v1.0/rows").respond(
            200, json=[], headers={"Link": f'<{API}/rest/v1.0/rows?page=2>; rel="next"'}
        )
        pages = [p async for p in make_client().paginate(CREDS, "/rest/v1.0/rows", company_id=1)]
        assert len(pages) == 1 and pages[0].next_page is None

    async def test_params_and_start_page_are_sent(self, router: respx.MockRouter) -> None:
        route = router.get(f"{API}/rest/v1.0/rows").respond(200, json=[])
        client = make_client(per_page=50)
        params = {"filters[updated_at]": "2024-01-01...2024-02-01", "filters[x][]": ["a", "b"]}
        async for _ in client.paginate(
            CREDS, "/rest/v1.0/rows", company_id=4, params=params, start_page=7
        ):
            pass
        request = route.calls.last.request
        assert request.url.params["page"] == "7"
        assert request.url.params["per_page"] == "50"
        assert request.url.params.get_list("filters[x][]") == ["a", "b"]
        assert request.headers["Procore-Company-Id"] == "4"
        assert request.headers["Authorization"] == "Bearer tok-1"
        assert request.headers["Accept"] == "application/json"
        assert "procore-dmsa-connector" in request.headers["User-Agent"]
