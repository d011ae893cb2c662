"""The destination interface every target (SQL, files, HTTP push) implements, and its errors."""

from __future__ import annotations

import abc
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from app.destinations.records import DestinationRecord


class InvalidDestinationURL(ValueError):
    """A destination URL that cannot be used; the message is safe to show (no secrets)."""


class DestinationError(Exception):
    """A destination failed to store a batch; the run should fail and may be retried later."""


class DestinationRejected(DestinationError):
    """The receiver refused a batch for good (an HTTP 4xx other than 408 and 429)."""

    def __init__(self, status: int, answer: str, *, limit: int = 200) -> None:
        self.status = status
        self.answer = excerpt(answer, limit)
        super().__init__(f"destination rejected the batch with HTTP {status}: {self.answer}")


def excerpt(text: str, limit: int = 200) -> str:
    """Returns at most `limit` characters of a foreign answer, control characters removed."""
    cleaned = "".join(char if char.isprintable() else " " for char in text[: limit * 4])
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "…"


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """A record the destination could not store faithfully, kept aside with the reason."""

    id: int
    reason: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: how many records landed and which were quarantined instead.

    `notes` are what the run should say about the batch (a warehouse column whose type
    changed, for example).
    """

    written: int
    quarantined: tuple[QuarantinedRecord, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)


class Destination(abc.ABC):
    """Where synced records go; one instance per destination URL, safe for concurrent writes."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connects to the destination; what it needs per stream is created lazily."""

    @abc.abstractmethod
    async def write(
        self,
        stream: str,
        company_id: int,
        records: Sequence[DestinationRecord],
        *,
        run_id: str,
    ) -> WriteResult:
        """Upserts one batch idempotently; returns only once the batch is durable.

        A record the destination cannot store faithfully is quarantined (kept aside for an
        operator, with the reason) instead of failing the batch; every other record lands.
        """

    @abc.abstractmethod
    async def mark_deleted(
        self,
        stream: str,
        company_id: int,
        ids: Sequence[int],
        deleted_at: datetime,
        *,
        run_id: str,
    ) -> int:
        """Marks those records deleted and returns how many were marked."""

    @abc.abstractmethod
    async def purge(self, company_id: int, streams: Collection[str]) -> dict[str, int]:
        """Removes everything synced for one company; returns the rows that went, per stream.

        `streams` names every stream the connector may have written (the catalog), so that a
        destination touches only its own tables, never another prefix's or application's.
        """

    @abc.abstractmethod
    async def finish_run(self, run_id: str, *, succeeded: bool) -> None:
        """Records the end of a run (a manifest for files; nothing for SQL)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Releases connections and clients; safe to call more than once."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Returns a human description of the destination with credentials redacted."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
