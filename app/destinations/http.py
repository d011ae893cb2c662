"""HTTP push destination: JSON batches signed with Standard Webhooks, retried with backoff."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from app.destinations.base import Destination, DestinationError, DestinationRejected
from app.destinations.records import (
    DestinationRecord,
    check_run_id,
    check_stream_name,
    record_line,
    tombstone_line,
    unique_last,
)
from app.destinations.signing import decode_secret, signature_headers
from app.destinations.urls import HTTPTarget, redact_destination_url

USER_AGENT = "procore-dmsa-connector/0.1"
ANSWER_LIMIT = 500
RETRYABLE_STATUSES = frozenset({408, 429})

Sleep = Callable[[float], Awaitable[None]]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Returns the seconds a Retry-After header asks for (delta or HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def message_id(payload: dict[str, Any]) -> str:
    """Returns a webhook-id derived from the batch's content, so a resent batch keeps its id."""
    # synced_at changes on every attempt and is left out; everything else identifies the batch.
    stable = {
        **{key: value for key, value in payload.items() if key != "records"},
        "records": [
            {key: value for key, value in line.items() if key != "synced_at"}
            for line in payload["records"]
        ],
    }
    canonical = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "msg_" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


PURGE_STREAM = "*"  # a purge concerns every stream of the company


class HTTPDestination(Destination):
    """Pushes each batch as one signed JSON POST and waits for a 2xx."""

    def __init__(
        self,
        target: HTTPTarget,
        *,
        signing_secret: str,
        http: httpx.AsyncClient | None = None,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 300.0,
        timeout: float = 30.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        decode_secret(signing_secret)  # a malformed secret should fail now, not at first write
        self._target = target
        self._secret = signing_secret
        self._given_client = http
        self._client: httpx.AsyncClient | None = None
        self._owns_client = False
        self._max_attempts = max(1, max_attempts)
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._retry_after_max = retry_after_max
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
    ) -> None:
        """Posts the batch as records.batch; returns once the receiver answered 2xx."""
        check_stream_name(stream)
        check_run_id(run_id)
        if not records:
            return
        synced_at = datetime.now(UTC)
        lines = [record_line(company_id, record, synced_at) for record in unique_last(records)]
        await self._deliver("records.batch", stream, company_id, run_id, lines)

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

    async def purge(self, company_id: int) -> dict[str, int]:
        """Asks the receiver to delete everything of the company (a signed `company.purge`)."""
        await self._deliver("company.purge", PURGE_STREAM, company_id, f"purge-{company_id}", [])
        return {}

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._backoff_max, self._backoff_base * 2.0 ** (attempt - 1))
        # Half fixed, half random: retries spread out but still grow.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _deliver(
        self,
        event_type: str,
        stream: str,
        company_id: int,
        run_id: str,
        lines: list[dict[str, Any]],
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
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        msg_id = message_id(payload)
        last_problem = "no attempt made"
        for attempt in range(1, self._max_attempts + 1):
            headers = {
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                **signature_headers(self._secret, msg_id, body, timestamp=int(time.time())),
            }
            delay = self._backoff(attempt)
            try:
                response = await self._client.post(
                    self._target.url, content=body, headers=headers, timeout=self._timeout
                )
            except httpx.TransportError as error:
                last_problem = f"{type(error).__name__}: {error}" if str(error) else repr(error)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return
                if status not in RETRYABLE_STATUSES and status < 500:
                    raise DestinationRejected(status, response.text[: ANSWER_LIMIT * 2])
                last_problem = f"HTTP {status}: {response.text[:ANSWER_LIMIT]}"
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                if retry_after is not None:
                    delay = min(retry_after, self._retry_after_max)
            if attempt < self._max_attempts:
                await self._sleep(delay)
        raise DestinationError(
            f"{self.describe()}: gave up on a {event_type} of {len(lines)} {stream} records "
            f"after {self._max_attempts} attempts; last answer {last_problem}"
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
