"""`connector demo`: the simulator and the service on loopback, an install, two syncs, a report."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from app.core.logging import configure_logging
from app.core.server_thread import ServiceThread
from app.core.settings import Settings
from app.credentials.crypto import generate_key
from app.destinations.signing import generate_signing_secret, sign
from app.main import create_app

DEMO_DIR = Path("data") / "demo"
TIMEOUT_SECONDS = 120.0


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
                _env_file=None,
            )
            with ServiceThread(create_app(settings)) as service_url:
                console.print(f"simulator at {sim.url}, service at {service_url}")
                console.print(
                    f"simulator rate limits raised for the demo: {sim_config.hourly_limit}/h, "
                    f"{sim_config.spike_limit} per {sim_config.spike_window_seconds:g} s "
                    "(Procore's documented 3,600/h and 25 per 10 s would slow it down)"
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
                second_id = client.post(f"/admin/v1/installations/{company['id']}/syncs").json()
                incremental = wait_for_run(client, second_id["run_id"])
                _report(console, full, incremental, changed, destination, started)
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
    console.print(
        f"destination database: {destination} ({sum(r for r, _ in counts.values())} rows "
        f"in {len(counts)} tables)"
    )
    console.print(f"total time: {time.monotonic() - started:.1f} s")
