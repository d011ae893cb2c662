"""Warehouse and lake destinations through dlt, behind the connector's Destination interface.

`write` returns only after dlt finished loading the batch (merged into its tables), so the
engine's checkpoint never runs ahead of the warehouse. A `pipeline.run` costs a fixed ~0.5 s,
so concurrent writes (the engine writes up to `project_concurrency` pages at once) are
grouped: while one load runs, the batches that arrive wait and go together in the next one,
and each `write` returns when the load holding its batch is complete (group commit).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path

from app.destinations.base import (
    Destination,
    DestinationError,
    InvalidDestinationURL,
    WriteResult,
)
from app.destinations.policy import DestinationPolicy, resolve_allowed
from app.destinations.records import (
    DestinationRecord,
    check_run_id,
    check_stream_name,
    ensure_utc,
)
from app.destinations.screening import PARQUET, POSTGRESQL, notes, screen
from app.destinations.urls import check_table_prefix, redact_destination_url
from app.destinations.warehouse.loader import Batch, WarehouseLoader
from app.destinations.warehouse.targets import WarehouseTarget, missing_extra

_Pending = tuple[Batch, "asyncio.Future[list[str]]"]


class WarehouseDestination(Destination):
    """Loads records into a warehouse or lake with dlt: typed tables, child tables, merge."""

    def __init__(
        self, target: WarehouseTarget, *, policy: DestinationPolicy, table_prefix: str = ""
    ) -> None:
        self._target = target
        self._policy = policy
        self._prefix = target.table_prefix or check_table_prefix(table_prefix)
        # PostgreSQL text cannot hold U+0000; every kind has 64-bit key columns.
        self._limits = POSTGRESQL if target.kind == "postgres" else PARQUET
        self._loader: WarehouseLoader | None = None
        self._lock = asyncio.Lock()  # one dlt call at a time: a pipeline is not thread-safe
        self._pending: list[_Pending] = []
        self._drainer: asyncio.Task[None] | None = None
        self.loads = 0  # pipeline runs made, for tests and benchmarks

    async def open(self) -> None:
        """Checks the policy on the real path or resolved host, then connects through dlt."""
        if self._loader is not None:
            return
        problem = missing_extra(self._target.kind)
        if problem is not None:
            raise DestinationError(problem)
        target = self._target
        if target.path is not None:
            try:
                real = self._policy.confine(target.path, "warehouse path")
            except InvalidDestinationURL as error:
                raise DestinationError(str(error).removeprefix("destination_url: ")) from None
            folder = real.parent if target.kind == "duckdb" else real
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
            bucket_url = f"file://{real}" if target.kind == "filesystem" else None
            target = dataclasses.replace(target, path=real, bucket_url=bucket_url)
        address = None
        if target.host is not None:
            address = str(await resolve_allowed(self._policy, target.host, target.port))
        async with self._lock:
            loader = await asyncio.to_thread(
                WarehouseLoader, target, prefix=self._prefix, address=address
            )
            try:
                await asyncio.to_thread(loader.open)
            except BaseException:
                await asyncio.to_thread(loader.close)
                raise
        self._loader = loader

    def _loader_or_fail(self) -> WarehouseLoader:
        if self._loader is None:
            raise DestinationError("the warehouse destination is not open; call open() first")
        return self._loader

    async def write(
        self,
        stream: str,
        company_id: int,
        records: Sequence[DestinationRecord],
        *,
        run_id: str,
    ) -> WriteResult:
        """Loads the batch (with any concurrent ones) and returns once dlt completed the load."""
        check_stream_name(stream)
        check_run_id(run_id)
        self._loader_or_fail()
        kept, quarantined = screen(records, self._limits)
        if not kept and not quarantined:
            return WriteResult(written=0)
        found = await self._submit(Batch(stream, company_id, run_id, kept, quarantined))
        table = self._prefix + stream
        mine = tuple(note for note in found if note.startswith((f"{table}.", f"{table}__")))
        return WriteResult(written=len(kept), quarantined=notes(quarantined), notes=mine)

    async def _submit(self, batch: Batch) -> list[str]:
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending.append((batch, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        # The load goes on if the writer is cancelled; its batch is simply delivered again.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        loader = self._loader_or_fail()
        while self._pending:
            group, self._pending = self._pending, []
            companies: dict[int, list[_Pending]] = {}
            for item in group:
                companies.setdefault(item[0].company_id, []).append(item)
            for items in companies.values():
                async with self._lock:
                    try:
                        found = await asyncio.to_thread(loader.load, [b for b, _ in items])
                    except Exception as error:
                        for _, future in items:
                            if not future.done():
                                future.set_exception(error)
                        continue
                    self.loads += 1
                for _, future in items:
                    if not future.done():
                        future.set_result(found)

    async def mark_deleted(
        self,
        stream: str,
        company_id: int,
        ids: Sequence[int],
        deleted_at: datetime,
        *,
        run_id: str,
    ) -> int:
        """Sets deleted_at on rows not deleted yet; returns how many it marked (lakes append
        tombstones and return how many they wrote)."""
        check_stream_name(stream)
        check_run_id(run_id)
        unique_ids = sorted(set(ids))
        when = ensure_utc(deleted_at, "deleted_at")
        if not unique_ids or when is None:
            return 0
        loader = self._loader_or_fail()
        async with self._lock:
            return await asyncio.to_thread(
                loader.mark_deleted, stream, company_id, unique_ids, when
            )

    async def purge(self, company_id: int, streams: Collection[str]) -> dict[str, int]:
        """Deletes the company's rows from the streams' tables, their child tables and the
        quarantine table; returns the rows removed per stream (the stream's own table)."""
        names = sorted(check_stream_name(stream) for stream in streams)
        loader = self._loader_or_fail()
        async with self._lock:
            return await asyncio.to_thread(loader.purge, company_id, names)

    async def finish_run(self, run_id: str, *, succeeded: bool) -> None:
        """Does nothing: every batch was loaded before its write returned."""

    async def close(self) -> None:
        """Waits for a load in flight, then closes connections and the working folder."""
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
            self._drainer = None
        if self._loader is not None:
            loader, self._loader = self._loader, None
            async with self._lock:
                await asyncio.to_thread(loader.close)

    @property
    def path(self) -> Path | None:
        """The DuckDB file or local folder, if the warehouse is one."""
        return self._target.path

    def describe(self) -> str:
        """Returns e.g. 'duckdb warehouse dlt+duckdb:///data/w.duckdb (dataset procore)'."""
        details = [f"dataset {self._target.dataset!r}"]
        if self._prefix:
            details.append(f"table prefix {self._prefix!r}")
        shown = redact_destination_url(self._target.normalised)
        return f"{self._target.kind} warehouse {shown} ({', '.join(details)})"
