"""`connector demo`: the simulator and the service on loopback, an install, two syncs, a change
delivered by webhook, a report."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from app.core.logging import configure_logging
from app.core.server_thread import ServiceThread, free_port
from app.core.settings import Settings
from app.credentials.crypto import generate_key
from app.destinations.signing import generate_signing_secret, sign
from app.main import create_app

DEMO_DIR = Path("data") / "demo"
TIMEOUT_SECONDS = 120.0
WEBHOOK_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class WebhookLanding:
    """A change made in the simulator and how soon its webhook brought it to the destination."""

    lag_seconds: float
    run: dict[str, Any] | None  # the targeted run that read it


def signed_callback(secret: str, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """Body and Standard Webhooks headers of an install callback."""
    body = json.dumps(event).encode()
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }
    return body, headers


def wait_for_run(client: httpx.Client, run_id: str) -> dict[str, Any]:
    """Polls the admin API until a run ends."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        run: dict[str, Any] = client.get(f"/admin/v1/syncs/{run_id}").raise_for_status().json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} did not finish within {TIMEOUT_SECONDS:.0f} s")


def table_counts(path: Path) -> dict[str, tuple[int, int]]:
    """Rows and deleted rows per table of the destination database."""
    counts: dict[str, tuple[int, int]] = {}
    with sqlite3.connect(path) as db:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for name in sorted(names):
            total, deleted = db.execute(
                f'SELECT COUNT(*), COUNT(deleted_at) FROM "{name}"'  # noqa: S608 - names from sqlite_master
            ).fetchone()
            counts[name] = (int(total), int(deleted))
    return counts


def run_demo(*, keep_running: bool = False) -> int:
    """Runs the whole demo; returns the process exit code."""
    from procore_sim import SimulatorConfig
    from procore_sim.server import SimulatorServer

    configure_logging("WARNING", "console")
    console = Console()
    started = time.monotonic()
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    destination = (DEMO_DIR / "destination.db").resolve()
    callback_secret, admin_token = generate_signing_secret(), uuid.uuid4().hex
    sim_config = SimulatorConfig.lenient(
        companies=2,
        projects=3,
        records=40,
        seed=7,
    )
    try:
        with SimulatorServer(sim_config, host="127.0.0.1", port=0) as sim:
            company = sim.state.companies()[0]
            port = free_port()  # known first: it is the public URL Procore delivers to
            settings = Settings(
                mode="demo",
                database_url=f"sqlite:///{(DEMO_DIR / 'connector.db').resolve()}",
                procore_api_url=sim.url,
                procore_login_url=sim.url,
                encryption_keys=generate_key("demo"),
                callback_secret=callback_secret,
                admin_tokens=[admin_token],
                client_id=sim_config.client_id,
                client_secret=sim_config.client_secret,
                destination_url=f"sqlite:///{destination}",
                destination_root=DEMO_DIR.resolve(),
                destination_allowed_networks=["127.0.0.0/8"],
                discovery_interval_seconds=0,
                scheduler_tick_seconds=1,
                public_url=f"http://127.0.0.1:{port}",
                _env_file=None,
            )
            with ServiceThread(create_app(settings), port=port) as service_url:
                console.print(f"simulator at {sim.url}, service at {service_url}")
                console.print(
                    f"simulator rate limits raised for the demo: {sim_config.hourly_limit}/h, "
                    f"{sim_config.spike_limit} per {sim_config.spike_window_seconds:g} s "
                    "(Procore's documented 3,600/h and 25 per 10 s would slow it down)"
                )
                console.print(
                    f"webhooks: CONNECTOR_PUBLIC_URL={service_url}, so the service subscribes "
                    "a hook in the simulator, which delivers changes to it"
                )
                client = httpx.Client(
                    base_url=service_url, headers={"Authorization": f"Bearer {admin_token}"}
                )
                event = {
                    "type": "installation.created",
                    "data": {
                        "company_id": company["id"],
                        "company_name": company["name"],
                        "environment": "production",
                    },
                }
                body, headers = signed_callback(callback_secret, event)
                answer = client.post("/callbacks/installations", content=body, headers=headers)
                answer.raise_for_status()
                console.print(
                    f"install callback for {company['name']} ({company['id']}): "
                    f"{answer.status_code} {answer.json()}"
                )
                first = _first_run(client, company["id"])
                full = wait_for_run(client, first)
                changed = _mutate(sim.state, company["id"])
                incremental = wait_for_run(client, _sync_now(client, company["id"]))
                landing = _webhook_landing(client, sim.state, company["id"], destination)
                _report(console, full, incremental, changed, destination, started, landing)
                if keep_running:
                    console.print(f"serving; admin token {admin_token}; Ctrl-C to stop")
                    while True:
                        time.sleep(3600)
                ok = full["status"] == "succeeded" and incremental["status"] == "succeeded"
                return 0 if ok else 1
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        console.print(f"[red]demo failed:[/red] {type(exc).__name__}: {exc}")
        return 1


def _first_run(client: httpx.Client, company_id: int) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = client.get("/admin/v1/syncs", params={"company_id": company_id}).json()
        if runs:
            return str(runs[-1]["run_id"])
        time.sleep(0.1)
    raise TimeoutError("the install callback did not queue a sync")


def _sync_now(client: httpx.Client, company_id: int) -> str:
    """Queues a sync; waits while a run for webhook events is going (409). Returns its id."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        answer = client.post(f"/admin/v1/installations/{company_id}/syncs")
        if answer.status_code != 409 or time.monotonic() > deadline:
            return str(answer.raise_for_status().json()["run_id"])
        time.sleep(0.2)


def _settle(client: httpx.Client, company_id: int) -> None:
    """Waits until no webhook event is open and no run is queued or going."""
    deadline = time.monotonic() + WEBHOOK_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        view = client.get(f"/admin/v1/installations/{company_id}/freshness").json()
        runs = client.get("/admin/v1/syncs", params={"company_id": company_id}).json()
        busy = any(run["status"] in ("queued", "running") for run in runs)
        if view["webhooks"]["open_events"] == 0 and not busy:
            return
        time.sleep(0.2)
    raise TimeoutError(f"webhook events still open after {WEBHOOK_TIMEOUT_SECONDS:.0f} s")


def _webhook_landing(
    client: httpx.Client, sim: Any, company_id: int, destination: Path
) -> WebhookLanding:
    """Changes one RFI in the simulator and waits for its webhook to bring it to the
    destination; the lag runs from the change to the row's synced_at."""
    _settle(client, company_id)  # the changes above went their way first
    project_id = sim.project_ids(company_id)[0]
    record = sim.records("rfis", company_id, project_id)[0]
    subject = f"{record['subject']} (changed for the webhook)"
    changed_at = time.time()
    sim.update_record("rfis", record["id"], {"subject": subject})
    deadline = time.monotonic() + WEBHOOK_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        synced_at = _synced_at(destination, company_id, int(record["id"]), subject)
        if synced_at is not None:
            _settle(client, company_id)
            runs = client.get("/admin/v1/syncs", params={"company_id": company_id}).json()
            run = next((r for r in runs if r["trigger"] == "webhook"), None)
            return WebhookLanding(max(0.0, synced_at - changed_at), run)
        time.sleep(0.1)
    raise TimeoutError(
        f"an RFI changed in the simulator was not in the destination after "
        f"{WEBHOOK_TIMEOUT_SECONDS:.0f} s (no webhook delivered?)"
    )


def _synced_at(path: Path, company_id: int, record_id: int, subject: str) -> float | None:
    """When the destination row of an RFI was written, once it shows `subject`."""
    try:
        with sqlite3.connect(path) as db:
            row = db.execute(
                "SELECT data, synced_at FROM rfis WHERE company_id = ? AND id = ?",
                (company_id, record_id),
            ).fetchone()
    except sqlite3.OperationalError:  # locked by a writer for a moment
        return None
    if row is None or json.loads(row[0]).get("subject") != subject:
        return None
    written = datetime.fromisoformat(str(row[1]))
    return (written if written.tzinfo else written.replace(tzinfo=UTC)).timestamp()


def _mutate(sim: Any, company_id: int) -> dict[str, int]:
    """Changes a few records in the simulator so the incremental sync has something to read."""
    project_id = sim.project_ids(company_id)[0]
    rfis = sim.records("rfis", company_id, project_id)
    for record in rfis[:3]:
        sim.update_record("rfis", record["id"], {"subject": f"{record['subject']} (revised)"})
    sim.create_record("rfis", company_id, project_id, None)
    sim.delete_record("rfis", rfis[-1]["id"])
    return {"updated": 3, "created": 1, "deleted": 1}


def _report(
    console: Console,
    full: dict[str, Any],
    incremental: dict[str, Any],
    changed: dict[str, int],
    destination: Path,
    started: float,
    landing: WebhookLanding,
) -> None:
    table = Table(title="what landed where")
    for column in (
        "stream",
        "rows",
        "deleted",
        "full: records / requests",
        "incr.: records / requests",
    ):
        table.add_column(column, justify="left" if column == "stream" else "right")
    counts = table_counts(destination)
    for name, (rows, deleted) in counts.items():
        f = full["streams"].get(name, {})
        i = incremental["streams"].get(name, {})
        table.add_row(
            name,
            str(rows),
            str(deleted),
            f"{f.get('records_written', 0)} / {f.get('requests', 0)}",
            f"{i.get('records_written', 0)} / {i.get('requests', 0)}",
        )
    console.print(table)
    for label, run in (("full sync", full), ("incremental sync", incremental)):
        console.print(
            f"{label}: {run['status']}, {run['records']} records, {run['requests']} Procore "
            f"requests, {run['duration_seconds']} s"
            + (f", error: {run['error']}" if run["error"] else "")
        )
    console.print(f"changed in Procore between the runs: {changed}")
    targeted = landing.run
    via = f" (a targeted run, {targeted['requests']} requests)" if targeted else ""
    console.print(
        f"webhook: an RFI changed in Procore reached the destination "
        f"{landing.lag_seconds:.1f} s later{via}; without webhooks it waits for the next "
        "scheduled sync (hourly by default)"
    )
    console.print(
        f"destination database: {destination} ({sum(r for r, _ in counts.values())} rows "
        f"in {len(counts)} tables)"
    )
    console.print(f"total time: {time.monotonic() - started:.1f} s")
