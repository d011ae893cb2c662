"""HTTP push destination: JSON batches signed with Standard Webhooks, retried with backoff.

A receiver is foreign code: each connection goes to an address checked against the policy
(the URL's host resolved at send time, then pinned), at most ANSWER_READ_LIMIT bytes of an
answer are read, each attempt has a deadline for the whole exchange and each push one for all
its attempts, so a slow, huge or trickling answer cannot hold a worker (ADR 0011).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from app.core import json_codec
from app.core.retry import RetryPolicy, parse_retry_after
from app.destinations.base import (
    Destination,
    DestinationError,
    DestinationRejected,
    WriteResult,
    excerpt,
)
from app.destinations.policy import DestinationPolicy, UnresolvableHost, resolve_allowed
from app.destinations.records import (
    DestinationRecord,
    check_run_id,
    check_stream_name,
    format_timestamp,
    record_line,
    tombstone_line,
    unique_last,
)
from app.destinations.screening import JSON_TEXT, notes, quarantine_text, screen
from app.destinations.signing import decode_secret, signature_headers
from app.destinations.urls import HTTPTarget, redact_destination_url

USER_AGENT = "procore-dmsa-connector/0.1"
ANSWER_READ_LIMIT = 64 * 1024  # bytes of a receiver's answer ever read
ANSWER_EXCERPT = 200  # characters of it ever shown
RETRYABLE_STATUSES = frozenset({408, 429})
_UNSTABLE_FIELDS = frozenset({"synced_at", "quarantined_at"})

Sleep = Callable[[float], Awaitable[None]]


def message_id(payload: dict[str, Any]) -> str:
    """Returns a webhook-id derived from the batch's content, so a resent batch keeps its id."""
    # synced_at changes on every attempt and is left out; everything else identifies the batch.
    stable = {
        **{key: value for key, value in payload.items() if key != "records"},
        "records": [
            {key: value for key, value in line.items() if key not in _UNSTABLE_FIELDS}
            for line in payload["records"]
        ],
    }
    canonical = json_codec.dumps(stable).encode("utf-8")
    return "msg_" + hashlib.sha256(canonical).hexdigest()[:32]


PURGE_STREAM = "*"  # a purge concerns every stream of the company


class _Answer:
    """The status, headers and the first bytes of a receiver's answer."""

    def __init__(self, status: int, retry_after: str | None, head: bytes) -> None:
        self.status = status
        self.retry_after = retry_after
        self.text = excerpt(head.decode("utf-8", "replace"), ANSWER_EXCERPT)


class HTTPDestination(Destination):
    """Pushes each batch as one signed JSON POST and waits for a 2xx."""

    def __init__(
        self,
        target: HTTPTarget,
        *,
        signing_secret: str,
        policy: DestinationPolicy,
        previous_secrets: Sequence[str] = (),
        http: httpx.AsyncClient | None = None,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 300.0,
        timeout: float = 30.0,
        deadline: float = 900.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        # A malformed secret should fail now, not at the first write.
        for secret in (signing_secret, *previous_secrets):
            decode_secret(secret)
        self._target = target
        self._policy = policy
        self._secrets = [signing_secret, *previous_secrets]
        self._given_client = http
        self._client: httpx.AsyncClient | None = None
        self._owns_client = False
        self._max_attempts = max(1, max_attempts)
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._retry_after_max = retry_after_max
        self._attempt_seconds = timeout
        self._deadline_seconds = deadline
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._sleep = sleep

    async def open(self) -> None:
        """Creates an HTTP client unless one was given."""
        if self._client is not None:
            return
        if self._given_client is not None:
            self._client = self._given_client
        else:
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                limits=httpx.Limits(max_connections=10, max_keepalive_connections=5),
                follow_redirects=False,
            )
            self._owns_client = True

    async def write(
        self,
        stream: str,
        company_id: int,
        records: Sequence[DestinationRecord],
        *,
        run_id: str,
    ) -> WriteResult:
        """Posts the batch as records.batch (and what it cannot carry as records.quarantined);
        returns once the receiver answered 2xx."""
        check_stream_name(stream)
        check_run_id(run_id)
        kept, quarantined = screen(records, JSON_TEXT)
        synced_at = datetime.now(UTC)
        if kept:
            lines = [record_line(company_id, record, synced_at) for record in unique_last(kept)]
            await self._deliver("records.batch", stream, company_id, run_id, lines)
        if quarantined:
            held = [
                {
                    "company_id": company_id,
                    "id": record.id,
                    "reason": reason,
                    "quarantined_at": format_timestamp(synced_at),
                    "record": quarantine_text(record.data),
                }
                for record, reason in quarantined
            ]
            await self._deliver("records.quarantined", stream, company_id, run_id, held)
        return WriteResult(written=len(kept), quarantined=notes(quarantined))

    async def mark_deleted(
        self,
        stream: str,
        company_id: int,
        ids: Sequence[int],
        deleted_at: datetime,
        *,
        run_id: str,
    ) -> int:
        """Posts tombstones as records.deleted; returns how many ids it sent."""
        check_stream_name(stream)
        check_run_id(run_id)
        unique_ids = sorted(set(ids))
        if not unique_ids:
            return 0
        synced_at = datetime.now(UTC)
        lines = [tombstone_line(company_id, rid, deleted_at, synced_at) for rid in unique_ids]
        await self._deliver("records.deleted", stream, company_id, run_id, lines)
        return len(unique_ids)

    async def purge(self, company_id: int, streams: Collection[str]) -> dict[str, int]:
        """Asks the receiver to delete everything of the company (a signed `company.purge`).

        Each purge is a new message with a fresh webhook-id, so a receiver that drops
        duplicate ids still acts on a purge asked for again.
        """
        await self._deliver(
            "company.purge",
            PURGE_STREAM,
            company_id,
            f"purge-{company_id}",
            [],
            msg_id=f"msg_{uuid.uuid4().hex}",
        )
        return {}

    async def _pinned_request(self) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
        """Returns the URL with the host replaced by its checked address, the Host header and
        the TLS server name, so the connection goes exactly where the policy looked."""
        url = httpx.URL(self._target.url)
        address = await resolve_allowed(self._policy, self._target.host, self._target.port)
        host_header = url.netloc.decode("ascii")
        return url.copy_with(host=str(address)), {"host": host_header}, {"sni_hostname": url.host}

    async def _attempt(self, body: bytes, headers: dict[str, str]) -> _Answer:
        assert self._client is not None
        url, host_header, extensions = await self._pinned_request()
        async with (
            asyncio.timeout(self._attempt_seconds),
            self._client.stream(
                "POST",
                url,
                content=body,
                headers={**headers, **host_header},
                timeout=self._timeout,
                follow_redirects=False,
                extensions=extensions,
            ) as response,
        ):
            head = bytearray()
            # Raw bytes: a compressed answer is not inflated, and nothing past the limit is
            # read; leaving the block then closes the connection on the rest.
            async for chunk in response.aiter_raw():
                head.extend(chunk[: ANSWER_READ_LIMIT - len(head)])
                if len(head) >= ANSWER_READ_LIMIT:
                    break
            return _Answer(response.status_code, response.headers.get("retry-after"), bytes(head))

    async def _deliver(
        self,
        event_type: str,
        stream: str,
        company_id: int,
        run_id: str,
        lines: list[dict[str, Any]],
        *,
        msg_id: str | None = None,
    ) -> None:
        if self._client is None:
            raise DestinationError("the HTTP destination is not open; call open() first")
        payload = {
            "type": event_type,
            "company_id": company_id,
            "stream": stream,
            "run_id": run_id,
            "records": lines,
        }
        body = json_codec.dumps(payload).encode("utf-8")
        msg_id = msg_id or message_id(payload)
        # The one retry policy of outgoing HTTP (app/core/retry.py): attempts and a deadline.
        budget = RetryPolicy(
            max_attempts=self._max_attempts,
            max_seconds=self._deadline_seconds,
            base_delay=self._backoff_base,
            max_delay=self._backoff_max,
        ).start()
        last_problem = "no attempt made"
        attempt = 0
        while True:
            attempt += 1
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                "accept-encoding": "identity",
                **signature_headers(self._secrets, msg_id, body, timestamp=int(time.time())),
            }
            retry_after: float | None = None
            try:
                answer = await self._attempt(body, headers)
            except TimeoutError:
                last_problem = f"no complete answer within {self._attempt_seconds:g} s"
            except UnresolvableHost as error:
                last_problem = str(error)
            except httpx.TransportError as error:
                last_problem = f"{type(error).__name__}: {error}" if str(error) else repr(error)
            else:
                if 200 <= answer.status < 300:
                    return
                if answer.status not in RETRYABLE_STATUSES and answer.status < 500:
                    raise DestinationRejected(answer.status, answer.text, limit=ANSWER_EXCERPT)
                last_problem = f"HTTP {answer.status}: {answer.text}"
                retry_after = parse_retry_after(answer.retry_after)
            if retry_after is not None:
                delay = budget.wait(min(retry_after, self._retry_after_max))
            else:
                delay = budget.backoff()
            if delay is None:
                if attempt < self._max_attempts:
                    last_problem += f" (the push's {self._deadline_seconds:g} s deadline is near)"
                break
            await self._sleep(delay)
        raise DestinationError(
            f"{self.describe()}: gave up on a {event_type} of {len(lines)} {stream} records "
            f"after {attempt} attempts; last answer {last_problem}"
        )

    async def finish_run(self, run_id: str, *, succeeded: bool) -> None:
        """Does nothing: every batch was already acknowledged."""

    async def close(self) -> None:
        """Closes the HTTP client if this destination created it."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
        self._client = None
        self._owns_client = False

    def describe(self) -> str:
        """Returns e.g. 'HTTP push to https://***@receiver.example/hook (signed)'."""
        return f"HTTP push to {redact_destination_url(self._target.url)} (Standard Webhooks signed)"
