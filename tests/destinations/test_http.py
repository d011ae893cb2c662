"""HTTP push against a real loopback receiver that verifies Standard Webhooks signatures."""

from __future__ import annotations

import socket
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.core.retry import parse_retry_after
from app.destinations import (
    DestinationError,
    DestinationRejected,
    InvalidDestinationURL,
)
from app.destinations.http import HTTPDestination
from app.destinations.urls import HTTPTarget, parse_destination_url
from tests.destinations.factories import (
    ANYWHERE,
    BASE_TIME,
    make_batch,
    make_destination,
    make_record,
)
from tests.destinations.receiver import Receiver

COMPANY = 4242
RUN = "run-1"


def make_http_destination(url: str, secret: str, sleeps: list[float], **options: Any) -> Any:
    """Returns an HTTPDestination whose backoff sleeps are recorded instead of slept."""
    target = parse_destination_url(url)
    assert isinstance(target, HTTPTarget)

    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    options.setdefault("policy", ANYWHERE)
    return HTTPDestination(target, signing_secret=secret, sleep=record_sleep, **options)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TestHTTPDestination:
    async def test_pushes_a_signed_batch(self, receiver: Receiver, signing_secret: str) -> None:
        batch = make_batch(3)
        async with make_destination(receiver.url, signing_secret=signing_secret) as destination:
            await destination.write("rfis", COMPANY, batch, run_id=RUN)

        [delivery] = receiver.deliveries
        assert delivery.signature_error is None
        assert delivery.headers["content-type"] == "application/json"
        assert delivery.headers["webhook-id"].startswith("msg_")
        assert abs(int(delivery.headers["webhook-timestamp"]) - time.time()) < 60
        payload = delivery.payload
        assert payload["type"] == "records.batch"
        assert (payload["company_id"], payload["stream"], payload["run_id"]) == (
            COMPANY,
            "rfis",
            RUN,
        )
        first = payload["records"][0]
        assert set(first) == {
            "company_id",
            "id",
            "project_id",
            "updated_at",
            "deleted_at",
            "synced_at",
            "data",
        }
        assert first["updated_at"] == "2024-05-01T12:00:00Z"
        assert first["deleted_at"] is None
        assert [line["data"] for line in payload["records"]] == [r.data for r in batch]

    async def test_mark_deleted_pushes_tombstones(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        async with make_destination(receiver.url, signing_secret=signing_secret) as destination:
            marked = await destination.mark_deleted(
                "rfis", COMPANY, [3, 1, 3], BASE_TIME + timedelta(hours=1), run_id=RUN
            )

        assert marked == 2
        payload = receiver.deliveries[0].payload
        assert payload["type"] == "records.deleted"
        assert [(line["id"], line["deleted_at"], line["data"]) for line in payload["records"]] == [
            (1, "2024-05-01T13:00:00Z", None),
            (3, "2024-05-01T13:00:00Z", None),
        ]

    async def test_the_same_batch_keeps_its_webhook_id(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        async with make_destination(receiver.url, signing_secret=signing_secret) as destination:
            await destination.write("rfis", COMPANY, make_batch(2), run_id=RUN)
            await destination.write("rfis", COMPANY, make_batch(2), run_id=RUN)
            await destination.write("rfis", COMPANY, make_batch(2, title="new"), run_id=RUN)
            await destination.write("rfis", COMPANY, make_batch(2), run_id="run-2")

        ids = [delivery.headers["webhook-id"] for delivery in receiver.deliveries]
        assert ids[0] == ids[1]
        assert len({ids[0], ids[2], ids[3]}) == 3

    async def test_retries_a_503_and_honours_retry_after(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        receiver.answer_next(503, "busy", {"retry-after": "7"})
        receiver.answer_next(503, "still busy")
        sleeps: list[float] = []
        async with make_http_destination(receiver.url, signing_secret, sleeps) as destination:
            await destination.write("rfis", COMPANY, make_batch(2), run_id=RUN)

        assert [d.headers["x-test-answer"] for d in receiver.deliveries] == ["503", "503", "200"]
        assert len({d.headers["webhook-id"] for d in receiver.deliveries}) == 1
        assert all(d.signature_error is None for d in receiver.deliveries)
        assert sleeps[0] == 7
        assert (
            0.5 <= sleeps[1] <= 1.0
        )  # second backoff step: 1s ceiling, jittered over its upper half

    @pytest.mark.parametrize("status", [408, 429, 500, 502])
    async def test_retries_transient_statuses(
        self, receiver: Receiver, signing_secret: str, status: int
    ) -> None:
        receiver.answer_next(status)
        sleeps: list[float] = []
        async with make_http_destination(receiver.url, signing_secret, sleeps) as destination:
            await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)

        assert [d.headers["x-test-answer"] for d in receiver.deliveries] == [str(status), "200"]
        assert len(sleeps) == 1

    async def test_a_400_is_rejected_with_the_receivers_answer(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        receiver.answer_next(400, '{"error": "unknown stream rfis"}')
        sleeps: list[float] = []
        async with make_http_destination(receiver.url, signing_secret, sleeps) as destination:
            with pytest.raises(DestinationRejected) as caught:
                await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)

        assert caught.value.status == 400
        assert "unknown stream rfis" in caught.value.answer
        assert "HTTP 400" in str(caught.value)
        assert len(receiver.deliveries) == 1
        assert sleeps == []

    async def test_a_long_rejection_answer_is_truncated(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        receiver.answer_next(422, "x" * 5000)
        async with make_destination(receiver.url, signing_secret=signing_secret) as destination:
            with pytest.raises(DestinationRejected) as caught:
                await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)

        assert caught.value.status == 422
        assert len(caught.value.answer) <= 501

    async def test_a_wrong_secret_is_refused_by_the_receiver(self, receiver: Receiver) -> None:
        other_secret = "whsec_" + "QUJD" * 8
        async with make_destination(receiver.url, signing_secret=other_secret) as destination:
            with pytest.raises(DestinationRejected) as caught:
                await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)

        assert caught.value.status == 401
        assert receiver.deliveries[0].signature_error == "no webhook-signature matches"

    async def test_gives_up_after_the_last_attempt(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        for _ in range(3):
            receiver.answer_next(503, "down for maintenance")
        sleeps: list[float] = []
        async with make_http_destination(
            receiver.url, signing_secret, sleeps, max_attempts=3
        ) as destination:
            with pytest.raises(DestinationError) as caught:
                await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)

        assert not isinstance(caught.value, DestinationRejected)
        assert "after 3 attempts" in str(caught.value)
        assert "HTTP 503: down for maintenance" in str(caught.value)
        assert len(sleeps) == 2

    async def test_network_errors_are_retried_with_growing_backoff(
        self, signing_secret: str
    ) -> None:
        url = f"http://127.0.0.1:{unused_port()}/hook"
        sleeps: list[float] = []
        async with make_http_destination(
            url, signing_secret, sleeps, max_attempts=5, backoff_base=1.0, backoff_max=4.0
        ) as destination:
            with pytest.raises(DestinationError, match="ConnectError"):
                await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)

        assert len(sleeps) == 4
        # The shared policy's full jitter: each wait is at most its growing ceiling.
        for sleep, ceiling in zip(sleeps, [1.0, 2.0, 4.0, 4.0], strict=True):
            assert 0 <= sleep <= ceiling

    async def test_an_empty_batch_sends_nothing(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        async with make_destination(receiver.url, signing_secret=signing_secret) as destination:
            await destination.write("rfis", COMPANY, [], run_id=RUN)
            assert await destination.mark_deleted("rfis", COMPANY, [], BASE_TIME, run_id=RUN) == 0

        assert receiver.deliveries == []

    async def test_a_given_client_is_used_and_left_open(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        async with httpx.AsyncClient() as client:
            destination = make_destination(receiver.url, http=client, signing_secret=signing_secret)
            async with destination:
                await destination.write("rfis", COMPANY, [make_record(1)], run_id=RUN)
            assert not client.is_closed

        assert len(receiver.deliveries) == 1


class TestHTTPConfiguration:
    def test_needs_a_signing_secret(self) -> None:
        with pytest.raises(InvalidDestinationURL, match="signing secret"):
            make_destination("https://receiver.example.com/hook")

    def test_refuses_a_malformed_secret(self) -> None:
        with pytest.raises(ValueError, match="whsec_"):
            make_destination("https://receiver.example.com/hook", signing_secret="whsec_!!")

    def test_describe_redacts_credentials(self, signing_secret: str) -> None:
        destination = make_destination(
            "https://user:pw@receiver.example.com/hook?token=abc&region=eu",
            signing_secret=signing_secret,
        )
        description = destination.describe()
        assert "pw" not in description
        assert "abc" not in description
        assert "https://***@receiver.example.com/hook?token=***&region=eu" in description

    def test_parses_retry_after(self) -> None:
        assert parse_retry_after("12") == 12
        assert parse_retry_after(None) is None
        assert parse_retry_after("soon") is None
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0


class TestHostileReceiver:
    async def test_a_huge_error_body_is_read_only_up_to_the_cap(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        chunk = (b"\x1b[31mEVIL\r\n" + b"x" * 100) * 600  # about 64 KiB, with control bytes
        tally = receiver.stream_next(400, chunk, 4096)  # 256 MiB in all
        sleeps: list[float] = []
        async with make_http_destination(receiver.url, signing_secret, sleeps) as destination:
            with pytest.raises(DestinationRejected) as caught:
                await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)

        # The connection was closed after the cap: the receiver could not send it all.
        assert not tally.finished
        assert tally.sent < 64 * 1024 * 1024
        answer = caught.value.answer
        assert len(answer) <= 201 and "EVIL" in answer
        assert all(char.isprintable() for char in answer)

    async def test_a_trickling_receiver_cannot_hold_the_push(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        tally = receiver.stream_next(200, b"{", 2000, pause=0.05)  # 100 s for the whole answer
        sleeps: list[float] = []
        async with make_http_destination(
            receiver.url, signing_secret, sleeps, timeout=1.0, max_attempts=1
        ) as destination:
            with pytest.raises(DestinationError) as caught:
                await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)

        assert "no complete answer within 1 s" in str(caught.value)
        assert not tally.finished and tally.sent < 2000

    async def test_retries_stop_at_the_pushs_deadline(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        receiver.answer_next(503, "busy", {"retry-after": "120"})
        sleeps: list[float] = []
        async with make_http_destination(
            receiver.url, signing_secret, sleeps, deadline=60.0
        ) as destination:
            with pytest.raises(DestinationError, match="deadline") as caught:
                await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)

        assert sleeps == [] and len(receiver.deliveries) == 1
        assert "after 1 attempts" in str(caught.value)

    async def test_a_redirect_is_not_followed(
        self, receiver: Receiver, signing_secret: str
    ) -> None:
        receiver.answer_next(307, "", {"location": "http://169.254.169.254/latest/meta-data"})
        async with httpx.AsyncClient(follow_redirects=True) as client:
            destination = make_destination(receiver.url, http=client, signing_secret=signing_secret)
            async with destination:
                with pytest.raises(DestinationRejected) as caught:
                    await destination.write("rfis", COMPANY, make_batch(1), run_id=RUN)
        assert caught.value.status == 307
