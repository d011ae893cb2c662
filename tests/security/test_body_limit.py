"""Request bodies over the configured limit are refused with 413, declared or streamed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from procore_sim.server import SimulatorServer
from tests.factories import RunningService, install_event, make_settings, signed

LIMIT = 2048


@pytest.fixture
def small_service(
    sim: SimulatorServer, database_url: str, destination_url: str
) -> Iterator[RunningService]:
    settings = make_settings(
        database_url=database_url,
        procore_api_url=sim.url,
        procore_login_url=sim.url,
        destination_url=destination_url,
        max_body_bytes=LIMIT,
    )
    with RunningService(settings) as running:
        yield running


def chunks(total: int) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * 512
        sent += 512


class TestBodyLimit:
    def test_declared_oversized_body_is_413(self, small_service: RunningService) -> None:
        event = install_event(5, "x" * 10)
        event["padding"] = "y" * LIMIT
        body, headers = signed(event)
        answer = small_service.anonymous.post(
            "/callbacks/installations", content=body, headers=headers
        )
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "payload_too_large"
        admin = small_service.admin.patch(
            "/admin/v1/installations/5", json={"schedule": "every 1h", "pad": "z" * LIMIT}
        )
        assert admin.status_code == 413

    def test_streamed_oversized_body_is_413(self, small_service: RunningService) -> None:
        answer = small_service.admin.put(
            "/admin/v1/installations/5/credentials",
            content=chunks(LIMIT * 4),
            headers={"content-type": "application/json"},
        )
        assert "content-length" not in answer.request.headers  # really chunked
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "payload_too_large"

    def test_body_under_the_limit_is_served(self, small_service: RunningService) -> None:
        body, headers = signed(install_event(5, "Small Co"))
        answer = small_service.anonymous.post(
            "/callbacks/installations", content=body, headers=headers
        )
        assert answer.status_code == 202
        streamed = small_service.admin.patch(
            "/admin/v1/installations/5",
            content=iter([b'{"paused":', b" true}"]),
            headers={"content-type": "application/json"},
        )
        assert streamed.status_code == 200 and streamed.json()["paused"] is True
