"""Object storage destination (S3 and S3-compatible): one object per batch, a manifest per run.

Layout, as the file destination's under the URL's key prefix:
`<prefix>/<company_id>/<stream>/<run_id>-<seq>.jsonl` (or `.parquet`), the manifest at
`<prefix>/<company_id>/_runs/<run_id>.json`, quarantined records at
`<prefix>/<company_id>/_quarantine/<stream>/<run_id>-<seq>.jsonl`.

No partial object is ever visible: a PutObject is all or nothing ("Amazon S3 never adds
partial objects", PutObject API reference) and carries its MD5 so that a body damaged on the
way is refused; a body over MULTIPART_THRESHOLD goes as a multipart upload, which shows
nothing until CompleteMultipartUpload and is aborted on failure. `write` returns after S3
answered, so the object is durable before the engine saves its checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import re
import socket
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from app.core import json_codec
from app.core.logging import scrub_text
from app.destinations.base import Destination, DestinationError, WriteResult
from app.destinations.parquet import parquet_bytes, require_pyarrow
from app.destinations.policy import DestinationPolicy, resolve, resolve_allowed
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
from app.destinations.urls import redact_destination_url
from app.destinations.warehouse.targets import ObjectStoreTarget

MULTIPART_THRESHOLD = 8 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
RUNS, QUARANTINE = "_runs", "_quarantine"


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json_codec.dumps(line).encode("utf-8") + b"\n" for line in lines)


def _count(body: bytes, parquet: bool) -> tuple[int, int]:
    """(records, tombstones) in an object this destination wrote."""
    if parquet:
        _, pq = require_pyarrow()
        data = pq.read_table(io.BytesIO(body), columns=["data"]).column("data")
        return int(data.length()) - int(data.null_count), int(data.null_count)
    lines = [json_codec.loads(raw) for raw in body.splitlines() if raw.strip()]
    deleted = sum(1 for line in lines if line.get("data") is None)
    return len(lines) - deleted, deleted


def _policy_resolver(policy: DestinationPolicy) -> Any:
    """An aiohttp resolver that answers only addresses the policy allows, so every
    connection goes to a checked address (no DNS rebinding between check and use)."""
    abc: Any = importlib.import_module("aiohttp.abc")

    class PolicyResolver(abc.AbstractResolver):  # type: ignore[misc]
        async def resolve(
            self, host: str, port: int = 0, family: int = socket.AF_INET
        ) -> list[dict[str, Any]]:
            addresses = await resolve(host, port)
            for address in addresses:
                policy.check_address(host, address)
            return [
                {
                    "hostname": host,
                    "host": str(address),
                    "port": port,
                    "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
                for address in addresses
            ]

        async def close(self) -> None:
            return None

    return PolicyResolver()


class ObjectStoreDestination(Destination):
    """Writes each batch as one object under `<prefix>/<company_id>/<stream>/`."""

    def __init__(
        self,
        target: ObjectStoreTarget,
        *,
        policy: DestinationPolicy,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
    ) -> None:
        self._target = target
        self._threshold, self._part_size = multipart_threshold, part_size
        self._where = target.location
        self._policy = policy
        self._parquet = target.format == "parquet"
        self._extension = "parquet" if self._parquet else "jsonl"
        self._limits = PARQUET if self._parquet else JSON_TEXT
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._sequences: dict[tuple[int, str, str], int] = {}
        self._runs: dict[str, dict[int, dict[str, dict[str, Any]]]] = {}

    def _company(self, company_id: int) -> str:
        base = f"{self._where.key_prefix}/" if self._where.key_prefix else ""
        return f"{base}{company_id}/"

    def _key(self, company_id: int, folder: str, name: str) -> str:
        return f"{self._company(company_id)}{folder}/{name}"

    async def open(self) -> None:
        """Checks the endpoint's addresses against the policy and creates the S3 client."""
        if self._client is not None:
            return
        if self._parquet:
            require_pyarrow()
        await resolve_allowed(self._policy, self._where.host, self._where.port)
        session: Any = importlib.import_module("aiobotocore.session").get_session()
        config: Any = importlib.import_module("aiobotocore.config").AioConfig(
            connector_args={"resolver": _policy_resolver(self._policy)},
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 5, "mode": "standard"},
            s3={"addressing_style": "path"} if self._where.credentials["endpoint_url"] else {},
        )
        options = {k: v for k, v in self._where.credentials.items() if v is not None}
        stack = AsyncExitStack()
        self._client = await stack.enter_async_context(
            session.create_client("s3", config=config, **options)
        )
        self._stack = stack
        async with self._translated("checking the bucket"):
            await self._client.head_bucket(Bucket=self._where.bucket)

    @asynccontextmanager
    async def _translated(self, action: str) -> AsyncIterator[None]:
        """Turns S3 and network errors into a DestinationError naming what failed."""
        try:
            yield
        except DestinationError:
            raise
        except Exception as error:
            reason = scrub_text(" ".join(str(error).split())[:300])
            raise DestinationError(
                f"{self.describe()}: {action} failed: {type(error).__name__}: {reason}"
            ) from None

    def _s3(self) -> Any:
        if self._client is None:
            raise DestinationError("the object store destination is not open; call open() first")
        return self._client

    async def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self._s3().get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._where.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys

    async def _put(self, key: str, body: bytes) -> None:
        s3, bucket = self._s3(), self._where.bucket
        if len(body) <= self._threshold:
            digest = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324
            await s3.put_object(Bucket=bucket, Key=key, Body=body, ContentMD5=digest)
            return
        upload = await s3.create_multipart_upload(Bucket=bucket, Key=key)
        upload_id = upload["UploadId"]
        try:
            parts = []
            size = self._part_size
            for number, start in enumerate(range(0, len(body), size), start=1):
                answer = await s3.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body[start : start + size],
                )
                parts.append({"ETag": answer["ETag"], "PartNumber": number})
            await s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    async def _next_key(self, company_id: int, folder: str, run_id: str, extension: str) -> str:
        slot = (company_id, folder, run_id)
        if slot not in self._sequences:
            # A resumed run continues after the objects its earlier attempt wrote.
            pattern = re.compile(rf"{re.escape(run_id)}-([0-9]{{6,}})\.{extension}")
            found = await self._keys(self._key(company_id, folder, f"{run_id}-"))
            numbers = [
                int(match.group(1))
                for key in found
                if (match := pattern.fullmatch(key.rsplit("/", 1)[-1]))
            ]
            self._sequences[slot] = max(numbers, default=0)
        self._sequences[slot] += 1
        return self._key(company_id, folder, f"{run_id}-{self._sequences[slot]:06d}.{extension}")

    async def _write_object(
        self, stream: str, company_id: int, run_id: str, lines: list[dict[str, Any]], deleted: int
    ) -> None:
        body = parquet_bytes(lines) if self._parquet else _jsonl(lines)
        key = await self._next_key(company_id, stream, run_id, self._extension)
        await self._put(key, body)
        self._runs.setdefault(run_id, {}).setdefault(company_id, {})[key] = {
            "stream": stream,
            "records": len(lines) - deleted,
            "deleted": deleted,
            "bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }

    async def write(
        self,
        stream: str,
        company_id: int,
        records: Sequence[DestinationRecord],
        *,
        run_id: str,
    ) -> WriteResult:
        """Writes the batch as one object (and quarantined records as another); returns after
        S3 stored them."""
        check_stream_name(stream)
        check_run_id(run_id)
        kept, quarantined = screen(records, self._limits)
        now = datetime.now(UTC)
        async with self._translated(f"writing {stream}"):
            if kept:
                lines = [record_line(company_id, record, now) for record in unique_last(kept)]
                await self._write_object(stream, company_id, run_id, lines, 0)
            if quarantined:
                held = [
                    {
                        "company_id": company_id,
                        "stream": stream,
                        "id": record.id,
                        "run_id": run_id,
                        "reason": reason,
                        "quarantined_at": format_timestamp(now),
                        "record": quarantine_text(record.data),
                    }
                    for record, reason in quarantined
                ]
                folder = f"{QUARANTINE}/{stream}"
                key = await self._next_key(company_id, folder, run_id, "jsonl")
                await self._put(key, _jsonl(held))
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
        """Writes one tombstone per id (data null, deleted_at set); returns how many."""
        check_stream_name(stream)
        check_run_id(run_id)
        unique_ids = sorted(set(ids))
        if not unique_ids:
            return 0
        now = datetime.now(UTC)
        lines = [tombstone_line(company_id, rid, deleted_at, now) for rid in unique_ids]
        async with self._translated(f"marking {stream} deletes"):
            await self._write_object(stream, company_id, run_id, lines, len(lines))
        return len(unique_ids)

    async def finish_run(self, run_id: str, *, succeeded: bool) -> None:
        """Writes `<prefix>/<company_id>/_runs/<run_id>.json` for each company the run wrote."""
        check_run_id(run_id)
        companies = self._runs.pop(run_id, {})
        async with self._translated("writing the run manifest"):
            for company_id, written in sorted(companies.items()):
                await self._manifest(company_id, run_id, written, succeeded)
        for slot in [slot for slot in self._sequences if slot[2] == run_id]:
            del self._sequences[slot]

    async def _manifest(
        self, company_id: int, run_id: str, written: dict[str, dict[str, Any]], succeeded: bool
    ) -> None:
        """Lists every object of the run (an earlier attempt's too) with counts and checksums."""
        base = self._company(company_id)
        name = rf"{re.escape(run_id)}-[0-9]{{6,}}\.{self._extension}"
        pattern = re.compile(rf"([a-z][a-z0-9_]*)/{name}")
        files: list[dict[str, Any]] = []
        for key in sorted(await self._keys(base)):
            relative = key[len(base) :]
            if not pattern.fullmatch(relative):
                continue
            known = written.get(key)
            if known is None:
                answer = await self._s3().get_object(Bucket=self._where.bucket, Key=key)
                body = await answer["Body"].read()
                records, deleted = _count(body, self._parquet)
                known = {
                    "stream": relative.split("/", 1)[0],
                    "records": records,
                    "deleted": deleted,
                    "bytes": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(),
                }
            files.append({"path": relative, **known})
        streams: dict[str, dict[str, int]] = {}
        for item in files:
            totals = streams.setdefault(item["stream"], {"records": 0, "deleted": 0, "files": 0})
            totals["records"] += item["records"]
            totals["deleted"] += item["deleted"]
            totals["files"] += 1
        manifest = {
            "run_id": run_id,
            "company_id": company_id,
            "status": "succeeded" if succeeded else "failed",
            "format": self._target.format,
            "finished_at": format_timestamp(datetime.now(UTC)),
            "streams": streams,
            "files": files,
        }
        body = json_codec.dumps(manifest).encode("utf-8") + b"\n"
        await self._put(self._key(company_id, RUNS, f"{run_id}.json"), body)

    async def purge(self, company_id: int, streams: Collection[str]) -> dict[str, int]:
        """Deletes every object under `<prefix>/<company_id>/`; returns rows per stream."""
        base = self._company(company_id)
        counts: dict[str, int] = {}
        async with self._translated(f"purging company {company_id}"):
            keys = await self._keys(base)
            for key in keys:
                stream, _, name = key[len(base) :].partition("/")
                if stream in (RUNS, QUARANTINE) or "/" in name:
                    continue
                answer = await self._s3().get_object(Bucket=self._where.bucket, Key=key)
                records, deleted = _count(await answer["Body"].read(), key.endswith(".parquet"))
                counts[stream] = counts.get(stream, 0) + records + deleted
            for start in range(0, len(keys), 1000):
                chunk = [{"Key": key} for key in keys[start : start + 1000]]
                await self._s3().delete_objects(
                    Bucket=self._where.bucket, Delete={"Objects": chunk, "Quiet": True}
                )
        return counts

    async def close(self) -> None:
        """Closes the S3 client; safe to call twice."""
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()

    def describe(self) -> str:
        """Returns e.g. 'JSON-lines objects in s3://bucket/prefix'."""
        kind = "Parquet objects" if self._parquet else "JSON-lines objects"
        return f"{kind} in {redact_destination_url(self._target.normalised)}"
