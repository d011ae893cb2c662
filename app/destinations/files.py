"""File destination: one newline-delimited JSON (or Parquet) file per batch, written atomically.

Layout: <dir>/<company_id>/<stream>/<run_id>-<seq>.jsonl, a manifest per run at
<dir>/<company_id>/_runs/<run_id>.json, and records that cannot be stored faithfully at
<dir>/<company_id>/_quarantine/<stream>/<run_id>-<seq>.jsonl. A file appears under its final
name only once it is complete and fsynced, so a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.core import json_codec
from app.destinations.base import (
    Destination,
    DestinationError,
    InvalidDestinationURL,
    WriteResult,
)
from app.destinations.parquet import count_parquet_rows, parquet_bytes, require_pyarrow
from app.destinations.policy import DestinationPolicy
from app.destinations.records import (
    DestinationRecord,
    check_run_id,
    check_stream_name,
    format_timestamp,
    record_line,
    tombstone_line,
    unique_last,
)
from app.destinations.screening import JSON_TEXT, PARQUET, notes, quarantine_text, screen
from app.destinations.urls import FileTarget

RUNS_DIRECTORY = "_runs"
QUARANTINE_DIRECTORY = "_quarantine"
_NOT_STREAMS = (RUNS_DIRECTORY, QUARANTINE_DIRECTORY)


@dataclass(slots=True)
class WrittenFile:
    """One file a run produced, as listed in its manifest."""

    stream: str
    path: str  # relative to the company directory
    records: int
    deleted: int
    bytes: int
    sha256: str


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _ensure_directory(path: Path) -> None:
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    # Make the new directory entries durable too, up to the destination root's parent.
    for directory in (path.parent, path.parent.parent):
        if directory.is_dir():
            _fsync_directory(directory)


def write_atomically(path: Path, content: bytes) -> None:
    """Writes content to a hidden temporary file, fsyncs it and renames it into place."""
    _ensure_directory(path.parent)
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _jsonl_bytes(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json_codec.dumps(line).encode("utf-8") + b"\n" for line in lines)


def _count_jsonl(path: Path) -> tuple[int, int]:
    records = deleted = 0
    with path.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                if json_codec.loads(raw).get("data") is None:
                    deleted += 1
                else:
                    records += 1
    return records, deleted


class FileDestination(Destination):
    """Writes each batch to its own file under <dir>/<company_id>/<stream>/."""

    def __init__(self, target: FileTarget, *, policy: DestinationPolicy) -> None:
        self._root = target.directory
        self._policy = policy
        self._limits = PARQUET if target.format == "parquet" else JSON_TEXT
        self._format = target.format
        self._extension = "parquet" if target.format == "parquet" else "jsonl"
        self._normalised = target.normalised
        self._sequences: dict[tuple[int, str, str], int] = {}
        self._runs: dict[str, dict[int, list[WrittenFile]]] = {}
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Checks the directory against the policy, then creates it (and checks pyarrow)."""
        if self._format == "parquet":
            require_pyarrow()
        try:
            # Symlinks are resolved once here, and the real directory is used from now on.
            self._root = self._policy.confine(self._root, "directory")
        except InvalidDestinationURL as error:
            raise DestinationError(str(error).removeprefix("destination_url: ")) from None
        await asyncio.to_thread(_ensure_directory, self._root)

    def _file_pattern(self, run_id: str, extension: str | None = None) -> re.Pattern[str]:
        suffix = re.escape(extension or self._extension)
        return re.compile(rf"{re.escape(run_id)}-([0-9]{{6,}})\.{suffix}")

    def _last_sequence(self, directory: Path, run_id: str, extension: str) -> int:
        # A resumed run must not overwrite the files its earlier attempt already wrote.
        if not directory.is_dir():
            return 0
        pattern = self._file_pattern(run_id, extension)
        found = [int(m.group(1)) for p in directory.iterdir() if (m := pattern.fullmatch(p.name))]
        return max(found, default=0)

    async def _next_path(
        self, company_id: int, folder: str, run_id: str, extension: str | None = None
    ) -> Path:
        directory = self._root / str(company_id) / folder
        suffix = extension or self._extension
        key = (company_id, folder, run_id)
        async with self._lock:
            if key not in self._sequences:
                self._sequences[key] = await asyncio.to_thread(
                    self._last_sequence, directory, run_id, suffix
                )
            self._sequences[key] += 1
            return directory / f"{run_id}-{self._sequences[key]:06d}.{suffix}"

    async def _write_file(
        self,
        stream: str,
        company_id: int,
        run_id: str,
        lines: list[dict[str, Any]],
        *,
        deleted: int,
    ) -> None:
        check_stream_name(stream)
        check_run_id(run_id)
        content = (
            await asyncio.to_thread(parquet_bytes, lines)
            if self._format == "parquet"
            else _jsonl_bytes(lines)
        )
        path = await self._next_path(company_id, stream, run_id)
        await asyncio.to_thread(write_atomically, path, content)
        written = WrittenFile(
            stream=stream,
            path=f"{stream}/{path.name}",
            records=len(lines) - deleted,
            deleted=deleted,
            bytes=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )
        self._runs.setdefault(run_id, {}).setdefault(company_id, []).append(written)

    async def write(
        self,
        stream: str,
        company_id: int,
        records: Sequence[DestinationRecord],
        *,
        run_id: str,
    ) -> WriteResult:
        """Writes the batch as one new file (and a quarantine file for the records it cannot
        store faithfully); returns after they were fsynced and renamed."""
        kept, quarantined = screen(records, self._limits)
        synced_at = datetime.now(UTC)
        if kept:
            lines = [record_line(company_id, record, synced_at) for record in unique_last(kept)]
            await self._write_file(stream, company_id, run_id, lines, deleted=0)
        if quarantined:
            check_stream_name(stream)
            check_run_id(run_id)
            held = [
                {
                    "company_id": company_id,
                    "stream": stream,
                    "id": record.id,
                    "run_id": run_id,
                    "reason": reason,
                    "quarantined_at": format_timestamp(synced_at),
                    "record": quarantine_text(record.data),
                }
                for record, reason in quarantined
            ]
            path = await self._next_path(
                company_id, f"{QUARANTINE_DIRECTORY}/{stream}", run_id, "jsonl"
            )
            await asyncio.to_thread(write_atomically, path, _jsonl_bytes(held))
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
        """Writes one tombstone line per id (data null, deleted_at set); returns how many."""
        unique_ids = sorted(set(ids))
        if not unique_ids:
            return 0
        synced_at = datetime.now(UTC)
        lines = [tombstone_line(company_id, rid, deleted_at, synced_at) for rid in unique_ids]
        await self._write_file(stream, company_id, run_id, lines, deleted=len(lines))
        return len(unique_ids)

    def _collect_files(
        self, company_id: int, run_id: str, written: list[WrittenFile]
    ) -> list[WrittenFile]:
        """Returns every file of the run for the company, including a previous attempt's."""
        known = {file.path: file for file in written}
        company_directory = self._root / str(company_id)
        pattern = self._file_pattern(run_id)
        files: list[WrittenFile] = []
        for stream_directory in sorted(company_directory.iterdir()):
            if stream_directory.name in _NOT_STREAMS or not stream_directory.is_dir():
                continue
            for path in sorted(stream_directory.iterdir()):
                if not pattern.fullmatch(path.name):
                    continue
                relative = f"{stream_directory.name}/{path.name}"
                if relative in known:
                    files.append(known[relative])
                    continue
                if self._format == "parquet":
                    records, deleted = count_parquet_rows(path)
                else:
                    records, deleted = _count_jsonl(path)
                content = path.read_bytes()
                files.append(
                    WrittenFile(
                        stream=stream_directory.name,
                        path=relative,
                        records=records,
                        deleted=deleted,
                        bytes=len(content),
                        sha256=hashlib.sha256(content).hexdigest(),
                    )
                )
        return files

    def _write_manifest(
        self, company_id: int, run_id: str, written: list[WrittenFile], succeeded: bool
    ) -> None:
        files = self._collect_files(company_id, run_id, written)
        streams: dict[str, dict[str, int]] = {}
        for file in files:
            totals = streams.setdefault(file.stream, {"records": 0, "deleted": 0, "files": 0})
            totals["records"] += file.records
            totals["deleted"] += file.deleted
            totals["files"] += 1
        manifest = {
            "run_id": run_id,
            "company_id": company_id,
            "status": "succeeded" if succeeded else "failed",
            "format": self._format,
            "finished_at": format_timestamp(datetime.now(UTC)),
            "streams": streams,
            "files": [
                {
                    "path": file.path,
                    "stream": file.stream,
                    "records": file.records,
                    "deleted": file.deleted,
                    "bytes": file.bytes,
                    "sha256": file.sha256,
                }
                for file in files
            ],
        }
        content = json_codec.dumps(manifest).encode("utf-8") + b"\n"
        path = self._root / str(company_id) / RUNS_DIRECTORY / f"{run_id}.json"
        write_atomically(path, content)

    async def purge(self, company_id: int, streams: Collection[str]) -> dict[str, int]:
        """Deletes the company's folder (files, quarantine, manifests); returns rows per stream.

        Every folder under the company's is the connector's own, so all of it goes.
        """
        try:
            return await asyncio.to_thread(self._remove_company, company_id)
        except (OSError, ValueError) as error:
            raise DestinationError(
                f"{self.describe()}: purging company {company_id} failed: "
                f"{type(error).__name__}: {error.strerror if isinstance(error, OSError) else error}"
            ) from None

    def _count_rows(self, path: Path) -> int:
        if path.suffix == ".parquet":
            return sum(count_parquet_rows(path))
        with path.open("rb") as handle:
            return sum(1 for raw in handle if raw.strip())

    def _remove_company(self, company_id: int) -> dict[str, int]:
        company_directory = self._root / str(company_id)
        if not company_directory.is_dir():
            return {}
        counts: dict[str, int] = {}
        for stream in sorted(company_directory.iterdir()):
            if not stream.is_dir() or stream.name in _NOT_STREAMS:
                continue
            counts[stream.name] = sum(
                self._count_rows(item)
                for item in stream.iterdir()
                if item.is_file() and not item.name.startswith(".")
            )
        shutil.rmtree(company_directory)
        _fsync_directory(self._root)
        return counts

    async def finish_run(self, run_id: str, *, succeeded: bool) -> None:
        """Writes <dir>/<company_id>/_runs/<run_id>.json for each company the run wrote to."""
        check_run_id(run_id)
        companies = self._runs.pop(run_id, {})
        for company_id, written in sorted(companies.items()):
            await asyncio.to_thread(self._write_manifest, company_id, run_id, written, succeeded)
        for key in [key for key in self._sequences if key[2] == run_id]:
            del self._sequences[key]

    async def close(self) -> None:
        """Does nothing: every file is closed as soon as it is written."""

    def describe(self) -> str:
        """Returns e.g. 'JSON-lines files in /var/lib/connector/out'."""
        kind = "Parquet files" if self._format == "parquet" else "JSON-lines files"
        return f"{kind} in {self._root}"
