"""Each installation's Procore environment picks its hosts and its credentials; a pair is never
sent to another environment's login host. One simulator per environment, over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from app.core.database import unit_of_work
from app.core.migrations import upgrade_to_head
from app.core.settings import PROCORE_HOSTS, ProcoreEnvironment, SettingsError, read_settings
from app.installations import service
from app.installations.environments import credentials_for
from app.installations.errors import EnvironmentNotServed
from app.runtime import Runtime, build_runtime
from procore_sim import SimulatorConfig
from procore_sim.server import SimulatorServer
from tests.factories import make_settings

PRODUCTION = ("prod-client", "prod-secret")
FEDERAL = ("fed-client", "fed-secret")


@pytest.fixture
def sims(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[ProcoreEnvironment, SimulatorServer]]:
    """A production, a monthly-sandbox and a federal Procore, each on its own loopback port,
    standing in for that environment's documented hosts."""
    configs = {
        ProcoreEnvironment.production: (PRODUCTION, 1),
        ProcoreEnvironment.monthly_sandbox: (PRODUCTION, 2),  # production credentials
        ProcoreEnvironment.federal: (FEDERAL, 3),
    }
    servers: dict[ProcoreEnvironment, SimulatorServer] = {}
    try:
        for env, ((client_id, secret), seed) in configs.items():
            config = SimulatorConfig(
                companies=1, projects=1, records=2, seed=seed, client_id=client_id,
                client_secret=secret,
            )  # fmt: skip
            servers[env] = SimulatorServer(config).__enter__()
            monkeypatch.setitem(PROCORE_HOSTS, env, (servers[env].url, servers[env].url))
        yield servers
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)


@pytest.fixture
async def rt(
    sims: dict[ProcoreEnvironment, SimulatorServer], database_url: str
) -> AsyncIterator[Runtime]:
    settings = make_settings(
        database_url=database_url,
        client_id=PRODUCTION[0],
        client_secret=PRODUCTION[1],
        federal_client_id=FEDERAL[0],
        federal_client_secret=FEDERAL[1],
    )
    await asyncio.to_thread(upgrade_to_head, database_url)
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        await runtime.aclose()


def token_requests(sim: SimulatorServer) -> int:
    return len(sim.state.request_log(path_prefix="/oauth/token"))


class TestEnvironments:
    async def test_each_environment_is_called_on_its_hosts_with_its_pair(
        self, rt: Runtime, sims: dict[ProcoreEnvironment, SimulatorServer]
    ) -> None:
        for env, sim in sims.items():
            company_id = sim.state.company_ids()[0]
            async with unit_of_work(rt.sessions) as session:
                inst, _ = await service.install(
                    session, rt, company_id=company_id, company_name=None, environment=env.value
                )
                creds = await credentials_for(session, rt, inst)
            assert creds.login_url == sim.url and creds.api_url == sim.url
            before = {other: token_requests(s) for other, s in sims.items()}
            # A wrong pair would be refused (invalid_client) by this environment's login host.
            projects = await rt.procore.get(
                creds,
                "/rest/v1.1/projects",
                company_id=company_id,
                params={"company_id": company_id},
            )
            assert len(projects) == 1
            after = {other: token_requests(s) for other, s in sims.items()}
            for other in sims:
                expected = 1 if other == env else 0
                assert after[other] - before[other] == expected, (env, other)
        federal = sims[ProcoreEnvironment.federal]
        assert federal.state.request_log(path_prefix="/oauth/token", status=401) == []

    async def test_environment_without_credentials_is_refused(
        self, rt: Runtime, sims: dict[ProcoreEnvironment, SimulatorServer]
    ) -> None:
        async with unit_of_work(rt.sessions) as session:
            with pytest.raises(EnvironmentNotServed, match="CONNECTOR_SANDBOX_CLIENT_ID"):
                await service.install(
                    session, rt, company_id=42, company_name=None, environment="sandbox"
                )
            # Its own pair makes it servable: that pair goes to the sandbox hosts only.
            inst, _ = await service.install(
                session,
                rt,
                company_id=42,
                company_name=None,
                environment="sandbox",
                client_id="own",
                client_secret="own-secret",
            )
            creds = await credentials_for(session, rt, inst)
        assert creds.login_url == PROCORE_HOSTS[ProcoreEnvironment.sandbox][0]


class TestSettings:
    def test_app_pairs_per_credential_family(self) -> None:
        prod = make_settings(client_id="p", client_secret="ps")
        assert prod.app_credentials_for(ProcoreEnvironment.monthly_sandbox) is not None
        assert prod.app_credentials_for(ProcoreEnvironment.sandbox) is None
        assert prod.app_credentials_for(ProcoreEnvironment.federal) is None
        sandbox = make_settings(client_id="s", client_secret="ss", procore_env="sandbox")
        assert sandbox.app_credentials_for(ProcoreEnvironment.production) is None
        both = make_settings(
            client_id="s", client_secret="ss", procore_env="sandbox",
            production_client_id="p", production_client_secret="ps",
        )  # fmt: skip
        pair = both.app_credentials_for(ProcoreEnvironment.monthly_sandbox)
        assert pair is not None and pair[0] == "p"

    def test_url_overrides_apply_to_every_environment(self) -> None:
        settings = make_settings(procore_api_url="http://127.0.0.1:1", procore_login_url=None)
        for env in ProcoreEnvironment:
            login, api = settings.hosts_for(env)
            assert api == "http://127.0.0.1:1" and login == PROCORE_HOSTS[env][0]

    def test_half_a_pair_is_one_clear_line(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CONNECTOR_FEDERAL_CLIENT_ID", "fed")
        with pytest.raises(SettingsError) as caught:
            read_settings(_env_file=None)
        assert str(caught.value) == (
            "CONNECTOR_FEDERAL_CLIENT_SECRET is not set: set both halves of the pair, or neither"
        )
