"""Small helpers the tests share: settings, a running service, signed callbacks, waiting."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from app.core.server_thread import ServiceThread
from app.core.settings import Settings
from app.credentials.crypto import generate_key
from app.destinations.signing import sign
from app.main import Role, create_app

CALLBACK_SECRET = "whsec_" + "dGVzdC1jYWxsYmFjay1zZWNyZXQtMzItYnl0ZXMhIQ=="
ADMIN_TOKEN = "test-admin-token-0123456789abcdef-4e1d"
TEST_KEY = generate_key("test1")


def make_settings(**overrides: Any) -> Settings:
    """Settings for a test service; nothing is read from the environment or a .env file."""
    values: dict[str, Any] = {
        "mode": "test",
        "encryption_keys": TEST_KEY,
        "callback_secret": CALLBACK_SECRET,
        "admin_tokens": [ADMIN_TOKEN],
        "discovery_interval_seconds": 0,
        "scheduler_tick_seconds": 0.5,
        "log_format": "json",
        # Tests keep destinations in their temporary folders (and the default one under the
        # working directory) and receivers on loopback; tests of the policy set their own.
        "destination_root": "/",
        "destination_allowed_networks": "127.0.0.0/8,::1/128",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def signed(
    event: dict[str, Any] | bytes,
    *,
    secret: str = CALLBACK_SECRET,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A callback body with valid Standard Webhooks headers."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return body, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def install_event(company_id: int, name: str = "Acme", **data: Any) -> dict[str, Any]:
    """An `installation.created` callback body."""
    return {
        "type": "installation.created",
        "data": {"company_id": company_id, "company_name": name, **data},
    }


class RunningService:
    """The service on a loopback port with an admin client."""

    def __init__(self, settings: Settings, role: Role = Role.all) -> None:
        self.settings = settings
        self._thread = ServiceThread(create_app(settings, role=role))
        self.url = ""
        self.admin: httpx.Client
        self.anonymous: httpx.Client

    def __enter__(self) -> RunningService:
        self.url = self._thread.__enter__()
        self.admin = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )
        self.anonymous = httpx.Client(base_url=self.url, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.admin.close()
        self.anonymous.close()
        self._thread.__exit__(*exc)

    def callback(self, event: dict[str, Any], **kwargs: Any) -> httpx.Response:
        """Sends a signed install callback."""
        body, headers = signed(event, **kwargs)
        return self.anonymous.post("/callbacks/installations", content=body, headers=headers)

    def wait_for_run(self, run_id: str, timeout: float = 60) -> dict[str, Any]:
        """Waits until a run ends and returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run: dict[str, Any] = self.admin.get(f"/admin/v1/syncs/{run_id}").json()
            if run.get("status") in ("succeeded", "failed", "cancelled"):
                return run
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} did not finish in {timeout} s")

    def latest_run_id(self, company_id: int, timeout: float = 10) -> str:
        """The newest run of a company (waits for one to exist)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items = self.admin.get("/admin/v1/syncs", params={"company_id": company_id}).json()
            if items:
                return str(items[0]["run_id"])
            time.sleep(0.05)
        raise AssertionError(f"no run for company {company_id}")

    def install_and_sync(self, company_id: int, **data: Any) -> dict[str, Any]:
        """Installs a company by callback and waits for its first (full) run."""
        answer = self.callback(install_event(company_id, **data))
        assert answer.status_code == 202, answer.text
        return self.wait_for_run(self.latest_run_id(company_id))


def callback_event(kind: str, company_id: int, **data: Any) -> dict[str, Any]:
    """An install callback body of any type (`created`, `updated` or `deleted`)."""
    return {"type": f"installation.{kind}", "data": {"company_id": company_id, **data}}


def sync_url(url: str) -> str:
    """A database URL usable by a synchronous SQLAlchemy engine (psycopg 3 for PostgreSQL)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def execute(url: str, sql: str, **params: Any) -> None:
    """Runs one write statement on a service or destination database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def query_rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """Runs one read query on a service or destination database."""
    from sqlalchemy import create_engine, text

    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def wait_until(predicate: Any, timeout: float = 20, message: str = "condition") -> None:
    """Polls until `predicate()` is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.05)
