"""How the product treats Procore (SPEC section 5): tokens, pacing, 429/503, 403 disconnects."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.acceptance.fake_procore import FakeProcore
from tests.acceptance.harness import Destination, Service, event


def setup_company(fake: FakeProcore, projects: int = 2, rfis: int = 120) -> int:
    company = fake.add_company("Pacing Co", projects=projects)
    for pid in company.projects:
        fake.add_records("rfis", company.id, pid, rfis)
    return company.id


def install(service: Service, cid: int) -> dict[str, object]:
    service.wait_installed(cid)
    assert service.callback(event("created", cid)).status_code == 202
    return service.wait_first_run(cid, timeout=60)


def test_token_fetched_once_and_company_header_everywhere(
    fake: FakeProcore,
    env_for: Callable[..., dict[str, str]],
    start: Callable[[dict[str, str]], Service],
) -> None:
    cid = setup_company(fake)
    service = start(env_for(CONNECTOR_STREAMS="projects,rfis"))
    run = install(service, cid)
    assert run["status"] == "succeeded", run
    second = service.sync_now(cid)
    assert second["status"] == "succeeded"
    assert fake.token_requests == 1  # one token for discovery and both runs
    assert fake.missing_header == 0
    assert all(c.company_header == str(cid) for c in fake.api_calls() if c.path[-9:] != "companies")


def test_short_lived_token_is_refreshed_before_it_expires(
    fake: FakeProcore,
    env_for: Callable[..., dict[str, str]],
    start: Callable[[dict[str, str]], Service],
) -> None:
    cid = setup_company(fake, projects=2, rfis=250)
    fake.expires_in = 3
    fake.latency = 0.8
    began = time.monotonic()
    service = start(env_for(CONNECTOR_STREAMS="projects,rfis"))
    run = install(service, cid)
    took = time.monotonic() - began
    assert run["status"] == "succeeded", run
    assert took > 3.5, "the run was too short to need a second token"
    assert 2 <= fake.token_requests <= 2 + took / 2, fake.token_requests
    assert 401 not in fake.statuses()  # refreshed ahead of expiry, not after a 401


def test_small_rate_budget_is_paced_without_429(
    fake: FakeProcore,
    env_for: Callable[..., dict[str, str]],
    start: Callable[[dict[str, str]], Service],
) -> None:
    cid = setup_company(fake, projects=2, rfis=210)
    fake.rate_limit, fake.rate_window = 6, 2.0
    service = start(env_for(CONNECTOR_STREAMS="projects,rfis"))
    run = install(service, cid)
    assert run["status"] == "succeeded", run
    assert 429 not in fake.statuses(), "the client overspent the advertised budget"
    dest = Destination(f"sqlite:///{service.log_path.parent / 'dest.db'}")
    assert len(dest.rows("rfis", cid)) == 420


def test_injected_429_and_503_are_waited_out(
    fake: FakeProcore,
    env_for: Callable[..., dict[str, str]],
    start: Callable[[dict[str, str]], Service],
) -> None:
    cid = setup_company(fake, projects=2, rfis=150)
    fake.fail_after = 3
    fake.fail_next = [(429, {"Retry-After": "1", "X-Rate-Limit-Remaining": "0"}), (503, {})]
    service = start(env_for(CONNECTOR_STREAMS="projects,rfis"))
    run = install(service, cid)
    assert run["status"] == "succeeded", run
    statuses = fake.statuses()
    assert 429 in statuses and 503 in statuses
    calls = fake.api_calls()
    i = next(n for n, c in enumerate(calls) if c.status == 429)
    assert calls[i + 1].at - calls[i].at >= 0.9, "Retry-After was not honoured"
    dest = Destination(f"sqlite:///{service.log_path.parent / 'dest.db'}")
    assert len(dest.rows("rfis", cid)) == 300


def test_disconnected_company_is_disconnected_not_uninstalled_and_left_alone(
    fake: FakeProcore,
    env_for: Callable[..., dict[str, str]],
    start: Callable[[dict[str, str]], Service],
) -> None:
    cid = setup_company(fake, projects=1, rfis=5)
    service = start(env_for(CONNECTOR_STREAMS="projects,rfis"))
    assert install(service, cid)["status"] == "succeeded"
    fake.disconnect(cid)
    queued = service.admin.post(f"/admin/v1/installations/{cid}/syncs")
    assert queued.status_code == 202
    run = service.wait_run(queued.json()["run_id"])
    assert run["status"] == "failed"
    inst = service.admin.get(f"/admin/v1/installations/{cid}").json()
    assert inst["status"] == "disconnected"  # credentials kept; probed, not uninstalled
    forbidden = [c for c in fake.api_calls(cid) if c.status == 403]
    assert len(forbidden) == 1, "403 'not connected' must not be retried"
    fake.clear_log()
    assert service.admin.post(f"/admin/v1/installations/{cid}/syncs").status_code == 409
    time.sleep(0.5)
    assert fake.api_calls(cid) == []
    dest = Destination(f"sqlite:///{service.log_path.parent / 'dest.db'}")
    assert len(dest.rows("rfis", cid)) == 5  # data kept


def test_discovery_installs_listed_companies_and_syncs_them_concurrently(
    fake: FakeProcore,
    env_for: Callable[..., dict[str, str]],
    start: Callable[[dict[str, str]], Service],
) -> None:
    cids = [setup_company(fake, projects=1, rfis=3) for _ in range(4)]
    for cid in cids:  # every new table is one more chance for the creation race
        fake.add_records("users", cid, None, 2)
        fake.add_records("vendors", cid, None, 2)
        for stream in ("submittals", "cost_codes", "documents", "checklists"):
            fake.add_records(stream, cid, fake.companies[cid].projects[0], 2)
    streams = "projects,users,vendors,rfis,submittals,cost_codes,documents,checklists"
    service = start(env_for(CONNECTOR_STREAMS=streams))
    service.wait_installed(*cids)
    results = [service.wait_first_run(cid) for cid in cids]
    for cid in cids:
        assert service.admin.get(f"/admin/v1/installations/{cid}").json()["status"] == "active"
    assert any(c.path == "/rest/v1.0/companies" for c in fake.log)
    assert [r["status"] for r in results] == ["succeeded"] * 4, [r["error"] for r in results]
