"""Server time of the console's installations page at 1,000 installations (prints figures).

    python benchmarks/console.py [--installations 1000] [--database-url URL] [--rounds 30]

Creates a fresh database (a temporary SQLite file unless --database-url names an empty one)
with the installations, each with an encrypted destination URL, a finished run and Integration
Health counters; serves the app on loopback; signs in to the console; then times, over real
HTTP, the first page (50 rows), a 200-row page, a search, a filter, and walking every page.
The loopback round trip is the server time plus well under a millisecond.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

from app.core.database import unit_of_work, utcnow
from app.core.migrations import upgrade_to_head
from app.core.server_thread import ServiceThread
from app.core.settings import Settings
from app.credentials import service as secrets
from app.credentials.crypto import generate_key
from app.credentials.models import SecretKind
from app.installations.models import Installation
from app.main import Role, create_app
from app.runs.models import RunStatus, SyncRun
from app.runs.progress import RunProgress
from app.runtime import build_runtime

TOKEN = "bench:viewer:" + uuid.uuid4().hex
KEY = generate_key("bench")


def settings_for(database_url: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        mode="test",
        database_url=database_url,
        encryption_keys=KEY,
        admin_tokens=TOKEN,
        discovery_interval_seconds=0,
        procore_api_url="http://127.0.0.1:9",
        procore_login_url="http://127.0.0.1:9",
    )


async def populate(database_url: str, count: int) -> None:
    """The installations, their destination secrets, one finished run each."""
    await asyncio.to_thread(upgrade_to_head, database_url)
    rt = build_runtime(settings_for(database_url))
    now = utcnow()
    try:
        async with unit_of_work(rt.sessions) as session:
            for company_id in range(1, count + 1):
                run_id = str(uuid.uuid4())
                failed = company_id % 13 == 0
                session.add(
                    SyncRun(
                        id=run_id,
                        company_id=company_id,
                        status=RunStatus.failed if failed else RunStatus.succeeded,
                        trigger="schedule",
                        queued_at=now - timedelta(minutes=10),
                        started_at=now - timedelta(minutes=9),
                        finished_at=now - timedelta(minutes=8),
                        error="destination refused the page" if failed else None,
                        stats=RunProgress(requests=120, records=5000).dump(),
                    )
                )
                session.add(
                    Installation(
                        company_id=company_id,
                        company_name=f"Builder {company_id:04d}",
                        status="active" if company_id % 17 else "uninstalled",
                        schedule="every 1h",
                        streams="all",
                        paused=company_id % 11 == 0,
                        last_run_id=run_id,
                        next_run_at=now + timedelta(minutes=company_id % 60),
                        missing_projects=[],
                        health={"401": 0, "429": company_id % 3, "requests": 120},
                        created_at=now - timedelta(days=30),
                    )
                )
                await secrets.put_secret(
                    session,
                    rt.keyring,
                    company_id,
                    SecretKind.destination_url,
                    f"postgresql://etl_{company_id}:secret-{company_id}@warehouse.internal/procore",
                )
    finally:
        await rt.aclose()


def timed(client: httpx.Client, path: str, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return samples


def report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"{label:<44} median {statistics.median(samples):7.1f} ms   p95 {p95:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installations", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'console.db'}"
        started = time.perf_counter()
        asyncio.run(populate(url, args.installations))
        print(
            f"{args.installations} installations written in {time.perf_counter() - started:.1f} s"
        )
        with (
            ServiceThread(create_app(settings_for(url), role=Role.api)) as base,
            httpx.Client(base_url=base, timeout=60) as client,
        ):
            form = client.get("/console/sign-in").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form)
            assert csrf is not None
            token = TOKEN.rsplit(":", 1)[1]
            signed = client.post("/console/sign-in", data={"csrf": csrf.group(1), "token": token})
            assert signed.status_code in (200, 303), signed.status_code
            timed(client, "/console/installations", 3)  # warm-up
            report(
                "installations page, 50 rows (default)",
                timed(client, "/console/installations", args.rounds),
            )
            report(
                "installations page, 200 rows",
                timed(client, "/console/installations?limit=200", args.rounds),
            )
            report(
                "search 'builder 09' (name or id)",
                timed(client, "/console/installations?q=builder+09", args.rounds),
            )
            report(
                "filter: last run failed",
                timed(client, "/console/installations?result=failed", args.rounds),
            )
            report(
                "a page deep in the list (after=900)",
                timed(client, "/console/installations?after=900", args.rounds),
            )
            walk = []
            path: str | None = "/console/installations"
            pages = 0
            started = time.perf_counter()
            while path:
                page = client.get(path).text
                pages += 1
                found = re.search(r'href="([^"]+)" rel="next"', page)
                path = found.group(1).replace("&amp;", "&") if found else None
            walk.append((time.perf_counter() - started) * 1000)
            rows = len(
                re.findall(
                    r"<tr data-company=", client.get("/console/installations?limit=200").text
                )
            )
            print(
                f"walked all {pages} pages of 50 in {walk[0]:.0f} ms; "
                f"a 200-row page holds {rows} rows"
            )


if __name__ == "__main__":
    main()
