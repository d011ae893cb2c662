"""Drives the product the way a user does: `python -m app.cli ...` subprocesses, env vars,
signed callbacks, the admin API and the destination tables. Nothing from `app` is imported."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[2]
CALLBACK_SECRET = "whsec_" + base64.b64encode(b"acceptance-callback-secret-32b!!").decode()
ADMIN_TOKEN = "acceptance-admin-token-5b1c2d9e7f30a4c8"
OTHER_TOKEN = "other-token-7d41c0a9e2b85f3619ca0d4e"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
FINAL = ("succeeded", "failed", "cancelled")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks: v1,base64(HMAC-SHA256(key=b64decode(secret after whsec_), id.ts.body))."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(
    body: bytes, *, secret: str = CALLBACK_SECRET, msg_id: str | None = None, ts: int | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time()) if ts is None else ts
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
        "content-type": "application/json",
    }


def event(kind: str, company_id: int, name: str = "Acme Builders", **data: Any) -> bytes:
    return json.dumps(
        {
            "type": f"installation.{kind}",
            "data": {"company_id": company_id, "company_name": name} | data,
        }
    ).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Runs `python -m app.cli ARGS` as a user would (from a scratch directory)."""
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def base_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(values)
    return env


class Service:
    """`connector serve --port P` in a child process."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / f"serve-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)],
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.admin = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )
        self.anon = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 40
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.log()}")
            try:
                if self.anon.get("/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not start: {self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        self.admin.close()
        self.anon.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()

    def wait_installed(self, *company_ids: int, timeout: float = 15) -> None:
        """Waits for start-up discovery to have installed these companies, so a test's own
        callback meets a known state (concurrent installs themselves are tested in
        test_api.py)."""
        deadline = time.monotonic() + timeout
        for cid in company_ids:
            while self.admin.get(f"/admin/v1/installations/{cid}").status_code != 200:
                assert time.monotonic() < deadline, f"{cid} was not discovered: {self.log()}"
                time.sleep(0.05)

    # -- callbacks -------------------------------------------------------------------------
    def callback(self, body: bytes, **kw: Any) -> httpx.Response:
        return self.anon.post(
            "/callbacks/installations", content=body, headers=signed_headers(body, **kw)
        )

    # -- admin -----------------------------------------------------------------------------
    def runs(self, company_id: int | None = None, **params: Any) -> list[dict[str, Any]]:
        if company_id is not None:
            params["company_id"] = company_id
        answer = self.admin.get("/admin/v1/syncs", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return body

    def wait_run(self, run_id: str, timeout: float = 40) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.admin.get(f"/admin/v1/syncs/{run_id}").json()
            if run.get("status") in FINAL:
                return run
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} did not finish: {self.log()}")

    def wait_first_run(self, company_id: int, timeout: float = 40) -> dict[str, Any]:
        deadline = time.monotonic() + 15
        while not (runs := self.runs(company_id)):
            assert time.monotonic() < deadline, f"no run for {company_id}: {self.log()}"
            time.sleep(0.1)
        return self.wait_run(runs[-1]["run_id"], timeout)

    def sync_now(self, company_id: int, **body: Any) -> dict[str, Any]:
        answer = self.admin.post(f"/admin/v1/installations/{company_id}/syncs", json=body or None)
        assert answer.status_code == 202, answer.text
        return self.wait_run(answer.json()["run_id"])


# ------------------------------------------------------------------ destination reading
class Destination:
    """Reads the SPEC section 6 tables of a SQLite or PostgreSQL destination."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        if self.url.startswith("sqlite:///"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as db:
                db.row_factory = sqlite3.Row
                return [dict(r) for r in db.execute(sql.replace("%s", "?"), params).fetchall()]
        with psycopg.connect(self.url) as db, db.cursor() as cur:
            cur.execute(sql, params)
            names = [c.name for c in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def rows(self, table: str, company_id: int) -> dict[int, dict[str, Any]]:
        found = self._query(
            f'SELECT * FROM "{table}" WHERE company_id = %s',  # noqa: S608 - fixed names
            (company_id,),
        )
        out = {}
        for row in found:
            if isinstance(row["data"], str):
                row["data"] = json.loads(row["data"])
            out[int(row["id"])] = row
        return out

    def tables(self) -> set[str]:
        if self.url.startswith("sqlite:///"):
            return {
                r["name"] for r in self._query("SELECT name FROM sqlite_master WHERE type='table'")
            }
        return {
            r["table_name"]
            for r in self._query(
                "SELECT table_name FROM information_schema.tables WHERE table_schema='public'"
            )
        }

    def columns(self, table: str) -> dict[str, str]:
        if self.url.startswith("sqlite:///"):
            return {
                r["name"]: r["type"].lower() for r in self._query(f'PRAGMA table_info("{table}")')
            }
        return {
            r["column_name"]: r["data_type"]
            for r in self._query(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name=%s",
                (table,),
            )
        }

    def primary_key(self, table: str) -> list[str]:
        if self.url.startswith("sqlite:///"):
            cols = self._query(f'PRAGMA table_info("{table}")')
            return [c["name"] for c in sorted(cols, key=lambda c: c["pk"]) if c["pk"]]
        return [
            r["attname"]
            for r in self._query(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                (f'"{table}"',),
            )
        ]


def as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def create_pg_database() -> str:
    name = f"accept_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
