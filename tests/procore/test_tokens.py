"""Tokens against the simulator: shared, refreshed early, refreshed once on 401, invalid_client."""

from __future__ import annotations

import asyncio

import pytest

from app.procore import (
    AppNotConnectedError,
    InvalidClientError,
    ProcoreCredentials,
    RequestStats,
    make_http_client,
)
from tests.procore.simulated import (
    CLIENT_SECRET,
    CREDS,
    RecordingTransport,
    api_log,
    clear_log,
    first_project,
    make_client,
    make_sim,
    rfis_path,
    token_log,
)


class TestTokenSharing:
    async def test_fifty_concurrent_calls_share_one_token(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim)
            stats = RequestStats()
            await asyncio.gather(
                *(
                    client.get(CREDS, rfis_path(project_id), company_id=company_id, stats=stats)
                    for _ in range(50)
                )
            )
            assert len(token_log(sim)) == 1
            assert stats.token_requests == 1
            assert stats.requests == 50

    async def test_fifty_calls_meeting_an_expired_token_fetch_exactly_one(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim)
            await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            sim.state.expire_tokens()
            clear_log(sim)
            results = await asyncio.gather(
                *(
                    client.get(CREDS, rfis_path(project_id), company_id=company_id)
                    for _ in range(50)
                )
            )
            assert all(isinstance(r, list) for r in results)
            assert len(token_log(sim)) == 1
            # each call retried at most once after its 401
            assert len(api_log(sim, status=200)) == 50
            assert len(api_log(sim, status=401)) <= 50

    async def test_token_is_refreshed_before_it_expires(self) -> None:
        with make_sim(token_lifetime=60) as sim:
            company_id, project_id = first_project(sim)
            clock = [1000.0]
            client = make_client(sim, token_refresh_margin=10, clock=lambda: clock[0])
            await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            clock[0] += 55  # past expires_in minus its margin (6 s), not yet expired
            await asyncio.gather(
                *(
                    client.get(CREDS, rfis_path(project_id), company_id=company_id)
                    for _ in range(50)
                )
            )
            assert len(token_log(sim)) == 2
            assert api_log(sim, status=401) == []

    async def test_invalidate_token_fetches_a_new_one(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim)
            await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            await client.invalidate_token(CREDS)
            await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            assert len(token_log(sim)) == 2


class TestInvalidClient:
    async def test_rejected_credentials_raise_and_stop_calling(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim)
            wrong = ProcoreCredentials(CREDS.client_id, "not-the-secret")
            for _ in range(3):
                with pytest.raises(InvalidClientError, match="Client authentication failed"):
                    await client.get(wrong, rfis_path(project_id), company_id=company_id)
            assert len(token_log(sim)) == 1
            assert api_log(sim) == []
            assert client.credentials_invalid(wrong)
            # the valid credentials of the same client id are not affected
            await client.get(CREDS, rfis_path(project_id), company_id=company_id)

    async def test_check_credentials_reports_procore_reason(self) -> None:
        with make_sim() as sim:
            client = make_client(sim)
            wrong = ProcoreCredentials("unknown-client", "nope")
            with pytest.raises(InvalidClientError) as caught:
                await client.check_credentials(wrong)
            assert caught.value.status == 401
            assert "unknown client" in caught.value.message
            await client.check_credentials(CREDS)  # valid: no error

    async def test_forget_credentials_allows_a_new_attempt(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            client = make_client(sim)
            wrong = ProcoreCredentials(CREDS.client_id, "old-secret")
            with pytest.raises(InvalidClientError):
                await client.get(wrong, rfis_path(project_id), company_id=company_id)
            await client.forget_credentials(wrong)
            with pytest.raises(InvalidClientError):
                await client.get(wrong, rfis_path(project_id), company_id=company_id)
            assert len(token_log(sim)) == 2

    async def test_invalidate_token_also_lifts_the_invalid_mark(self) -> None:
        with make_sim() as sim:
            client = make_client(sim)
            with pytest.raises(InvalidClientError):
                await client.check_credentials(ProcoreCredentials("rotated-client", "x"))
            await client.invalidate_token(ProcoreCredentials("rotated-client", "x"))
            assert not client.credentials_invalid(ProcoreCredentials("rotated-client", "x"))


class TestSecrets:
    async def test_secret_and_token_never_in_reprs_or_errors(self) -> None:
        with make_sim() as sim:
            company_id, project_id = first_project(sim)
            transport = RecordingTransport()
            client = make_client(sim, max_attempts=1, http=make_http_client(transport=transport))
            assert CLIENT_SECRET not in repr(CREDS) and CLIENT_SECRET not in str(CREDS)
            await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            wrong = ProcoreCredentials(CREDS.client_id, CLIENT_SECRET + "-x")
            with pytest.raises(InvalidClientError) as invalid:
                await client.check_credentials(wrong)
            sim.state.uninstall_company(company_id)
            with pytest.raises(AppNotConnectedError) as forbidden:
                await client.get(CREDS, rfis_path(project_id), company_id=company_id)
            issued = transport.bearer_tokens()
            assert issued
            for error in (invalid.value, forbidden.value):
                for text in (str(error), repr(error)):
                    assert CLIENT_SECRET not in text
                    assert all(token not in text for token in issued)
                    assert "Bearer" not in text
