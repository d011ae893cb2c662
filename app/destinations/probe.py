"""Testing a destination before using it: reachable, writable, signature accepted (HTTP).

Nothing is synced and nothing is left behind: SQL work happens in a transaction that is rolled
back, a file destination gets a scratch file that is removed at once, a SQLite file or a
folder that does not exist yet is not created (its nearest existing parent must be writable),
and an HTTP receiver gets a signed `connector.test` message that carries no records (receivers
answer it with a 2xx and store nothing; docs/destinations.md). The destination policy applies
as for a sync: the URL as written, then the resolved address or real path at connect time, and
at most a few kilobytes of a receiver's answer are read (ADR 0011).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Literal

import httpx
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from app.destinations.base import DestinationError, InvalidDestinationURL
from app.destinations.policy import DestinationPolicy, resolve_allowed
from app.destinations.signing import generate_signing_secret, signature_headers
from app.destinations.urls import (
    FileTarget,
    HTTPTarget,
    SQLTarget,
    check_policy,
    parse_destination_url,
    redact_destination_url,
)

TIMEOUT_SECONDS = 10.0
EXCERPT = 200
ANSWER_READ_LIMIT = 4096  # bytes of a receiver's answer ever read
TEST_EVENT = "connector.test"
USER_AGENT = "procore-dmsa-connector/0.1 (destination test)"


class ProbeCheck(BaseModel):
    """One thing checked about a destination."""

    name: Literal["reachable", "writable", "signature_accepted", "rejects_bad_signatures"]
    status: Literal["ok", "failed", "skipped"]
    detail: str = Field(description="what was done and, when it failed, why")


class ProbeResult(BaseModel):
    """What testing a destination found; nothing was written that stays."""

    ok: bool = Field(description="true when no check failed")
    kind: Literal["sql", "file", "http"]
    destination: str = Field(description="the destination URL, credentials redacted")
    checks: list[ProbeCheck]
    error: str | None = Field(description="the first failed check's reason, or null")

    @classmethod
    def of(
        cls, kind: Literal["sql", "file", "http"], url: str, checks: list[ProbeCheck]
    ) -> ProbeResult:
        """Builds the result; `ok` and `error` follow from the checks."""
        failed = [check for check in checks if check.status == "failed"]
        return cls(
            ok=not failed,
            kind=kind,
            destination=redact_destination_url(url),
            checks=checks,
            error=f"{failed[0].name}: {failed[0].detail}" if failed else None,
        )


def _ok(name: str, detail: str) -> ProbeCheck:
    return ProbeCheck(name=name, status="ok", detail=detail)


def _failed(name: str, detail: str) -> ProbeCheck:
    return ProbeCheck(name=name, status="failed", detail=detail[:500])


def _skipped(name: str, detail: str) -> ProbeCheck:
    return ProbeCheck(name=name, status="skipped", detail=detail)


def _reason(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    first = (str(original).strip().splitlines() or [""])[0]
    return f"{type(original).__name__}: {first}"[:300]


async def probe_destination(
    url: str,
    *,
    policy: DestinationPolicy,
    signing_secret: str | None = None,
    http: httpx.AsyncClient | None = None,
) -> ProbeResult:
    """Checks a destination URL without syncing; raises InvalidDestinationURL for a URL that
    is not a destination at all or that the policy refuses as written (a bad request)."""
    target = parse_destination_url(url)
    check_policy(target, policy)
    if isinstance(target, SQLTarget):
        if target.dialect == "sqlite":
            path = policy.confine(target.sqlite_path, "sqlite file")
            checks = await asyncio.to_thread(_probe_sqlite_file, path, target.table_prefix)
        else:
            checks = await _probe_sql(target, policy)
        return ProbeResult.of("sql", target.normalised, checks)
    if isinstance(target, FileTarget):
        directory = policy.confine(target.directory, "directory")
        checks = await asyncio.to_thread(_probe_folder, directory)
        return ProbeResult.of("file", target.normalised, checks)
    if isinstance(target, HTTPTarget):
        checks = await _probe_http(target, policy, signing_secret, http)
        return ProbeResult.of("http", target.normalised, checks)
    raise InvalidDestinationURL("destination_url: unsupported destination")  # pragma: no cover


# ---- SQL --------------------------------------------------------------------------------------


async def _probe_sql(target: SQLTarget, policy: DestinationPolicy) -> list[ProbeCheck]:
    """Connects to the checked address, then creates, fills and drops a scratch table (and the
    schema if it is missing) in one transaction that is rolled back."""
    assert target.url.host is not None  # checked when the URL was parsed
    try:
        address = await resolve_allowed(policy, target.url.host, target.url.port or 5432)
    except DestinationError as error:
        return [_failed("reachable", str(error)), _skipped("writable", "not reachable")]
    engine = create_async_engine(
        target.url,
        connect_args={"connect_timeout": int(TIMEOUT_SECONDS), "hostaddr": str(address)},
    )
    table = f"{target.table_prefix}connector_probe_{secrets.token_hex(4)}"
    qualified = f'"{target.schema}"."{table}"' if target.schema else f'"{table}"'
    checks: list[ProbeCheck] = []
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS * 2), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            checks.append(_ok("reachable", "connected and ran SELECT 1"))
            await conn.rollback()  # end the implicit transaction of SELECT 1
            transaction = await conn.begin()
            try:
                if target.schema:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{target.schema}"'))
                await conn.execute(text(f"CREATE TABLE {qualified} (id BIGINT PRIMARY KEY)"))
                await conn.execute(text(f"INSERT INTO {qualified} (id) VALUES (1)"))  # noqa: S608
                await conn.execute(text(f"DROP TABLE {qualified}"))
                checks.append(
                    _ok("writable", "created, filled and dropped a scratch table (rolled back)")
                )
            except DBAPIError as error:
                checks.append(_failed("writable", f"cannot create tables: {_reason(error)}"))
            finally:
                await transaction.rollback()
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        if not checks:
            checks.append(_failed("reachable", f"cannot connect: {_reason(error)}"))
            checks.append(_skipped("writable", "not reachable"))
        elif len(checks) == 1:
            checks.append(_failed("writable", f"cannot write: {_reason(error)}"))
    finally:
        await engine.dispose()
    return checks


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")  # pragma: no cover - the root always exists


def _creatable(path: Path, what: str) -> list[ProbeCheck]:
    """A folder or file that does not exist yet: can its nearest existing parent take it?"""
    parent = _nearest_existing(path.parent)
    if not parent.is_dir():
        return [
            _failed("reachable", f"{parent} is a file, so the {what} under it cannot be made"),
            _skipped("writable", "not reachable"),
        ]
    if not os.access(parent, os.W_OK | os.X_OK):
        return [
            _ok("reachable", f"{what} does not exist yet; {parent} exists"),
            _failed(
                "writable",
                f"{parent} is not writable by the service, so the {what} cannot be created",
            ),
        ]
    return [
        _ok("reachable", f"{what} does not exist yet; {parent} exists"),
        _ok("writable", f"{parent} is writable: the {what} is created at the first sync"),
    ]


def _probe_sqlite_file(path: Path, table_prefix: str) -> list[ProbeCheck]:
    if not path.exists():
        return _creatable(path, "database file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=TIMEOUT_SECONDS)
    except sqlite3.Error as error:
        return [
            _failed("reachable", f"cannot open {path}: {_reason(error)}"),
            _skipped("writable", "not reachable"),
        ]
    checks = [_ok("reachable", f"opened the SQLite database {path.name}")]
    table = f"{table_prefix}connector_probe_{secrets.token_hex(4)}"
    try:
        conn.execute("BEGIN")
        conn.execute(f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY)')
        conn.execute(f'INSERT INTO "{table}" (id) VALUES (1)')  # noqa: S608
        checks.append(_ok("writable", "created and filled a scratch table (rolled back)"))
    except sqlite3.Error as error:
        checks.append(_failed("writable", f"cannot write: {_reason(error)}"))
    finally:
        conn.rollback()
        conn.close()
    return checks


# ---- files ------------------------------------------------------------------------------------


def _probe_folder(directory: Path) -> list[ProbeCheck]:
    if not directory.exists():
        return _creatable(directory / "x", "folder")
    if not directory.is_dir():
        return [
            _failed("reachable", f"{directory} is a file, not a folder"),
            _skipped("writable", "not reachable"),
        ]
    checks = [_ok("reachable", f"{directory} exists")]
    scratch = directory / f".connector-probe-{secrets.token_hex(4)}"
    try:
        scratch.write_bytes(b"{}\n")
        scratch.unlink()
        checks.append(_ok("writable", "wrote and removed a scratch file"))
    except OSError as error:
        checks.append(_failed("writable", f"cannot write files there: {_reason(error)}"))
    return checks


# ---- HTTP -------------------------------------------------------------------------------------


class _Answer:
    """The status and the first bytes of a receiver's answer (never more)."""

    def __init__(self, status_code: int, head: bytes) -> None:
        self.status_code = status_code
        self.text = head.decode("utf-8", errors="replace")


def _excerpt(answer: _Answer) -> str:
    body = " ".join(answer.text[:EXCERPT].split())
    return f"HTTP {answer.status_code}" + (f": {body}" if body else "")


async def _post(
    client: httpx.AsyncClient,
    target: HTTPTarget,
    policy: DestinationPolicy,
    secret: str,
    body: bytes,
) -> _Answer:
    """One signed POST to the checked address of the receiver (the host pinned as for a sync),
    reading at most ANSWER_READ_LIMIT bytes of the answer within TIMEOUT_SECONDS."""
    url = httpx.URL(target.url)
    address = await resolve_allowed(policy, target.host, target.port)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": url.netloc.decode("ascii"),
        **signature_headers(secret, f"msg_test_{secrets.token_hex(12)}", body),
    }
    async with (
        asyncio.timeout(TIMEOUT_SECONDS),
        client.stream(
            "POST",
            url.copy_with(host=str(address)),
            content=body,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            follow_redirects=False,
            extensions={"sni_hostname": url.host},
        ) as response,
    ):
        head = bytearray()
        async for chunk in response.aiter_raw():
            head.extend(chunk[: ANSWER_READ_LIMIT - len(head)])
            if len(head) >= ANSWER_READ_LIMIT:
                break
        return _Answer(response.status_code, bytes(head))


async def _probe_http(
    target: HTTPTarget,
    policy: DestinationPolicy,
    signing_secret: str | None,
    http: httpx.AsyncClient | None,
) -> list[ProbeCheck]:
    """A message signed with a wrong secret (a receiver must refuse it), then, with the
    installation's secret, the same message (a receiver must accept it)."""
    body = json.dumps(
        {
            "type": TEST_EVENT,
            "company_id": 0,
            "stream": "*",
            "run_id": "test",
            "records": [],
            "sent_at": int(time.time()),
        },
        separators=(",", ":"),
    ).encode()
    client = http or httpx.AsyncClient(follow_redirects=False)
    checks: list[ProbeCheck] = []
    try:
        try:
            wrong = await _post(client, target, policy, generate_signing_secret(), body)
        except (httpx.HTTPError, DestinationError, TimeoutError) as error:
            return [
                _failed("reachable", f"cannot connect: {_reason(error)}"),
                _skipped("writable", "not reachable"),
                _skipped("signature_accepted", "not reachable"),
            ]
        checks.append(_ok("reachable", f"answered {_excerpt(wrong)}"))
        if wrong.status_code in (401, 403):
            checks.append(
                _ok("rejects_bad_signatures", f"refused a wrong signature ({_excerpt(wrong)})")
            )
        elif 200 <= wrong.status_code < 300:
            checks.append(
                _failed(
                    "rejects_bad_signatures",
                    "accepted a message signed with a wrong secret: the receiver does not verify "
                    "signatures",
                )
            )
        else:
            checks.append(
                _skipped(
                    "rejects_bad_signatures",
                    f"inconclusive: a wrong signature got {_excerpt(wrong)}",
                )
            )
        if signing_secret is None:
            checks.append(
                _skipped("writable", "no signing secret: give company_id or signing_secret")
            )
            checks.append(_skipped("signature_accepted", "no signing secret to sign with"))
            return checks
        try:
            signed = await _post(client, target, policy, signing_secret, body)
        except (httpx.HTTPError, DestinationError, TimeoutError) as error:
            checks.append(_failed("writable", f"the signed message failed: {_reason(error)}"))
            return checks
        if 200 <= signed.status_code < 300:
            checks.append(_ok("signature_accepted", f"a signed {TEST_EVENT} was accepted"))
            checks.append(_ok("writable", f"answered {_excerpt(signed)}"))
        elif signed.status_code in (401, 403):
            checks.append(
                _failed(
                    "signature_accepted",
                    f"the receiver refused the signature ({_excerpt(signed)}): it must verify with "
                    "this installation's signing secret",
                )
            )
            checks.append(_skipped("writable", "the signature was refused"))
        else:
            checks.append(_ok("signature_accepted", "not refused as unauthorised"))
            checks.append(
                _failed("writable", f"the receiver did not accept it ({_excerpt(signed)})")
            )
        return checks
    finally:
        if http is None:
            await client.aclose()
